"""The immutable offsite bucket: its policies, and the commands that deploy, verify and recover it."""
