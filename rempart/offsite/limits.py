"""Numbers shared by the control node's model and the offsite programs deployed on the backup server (this module
is installed beside them, so it imports nothing)."""

# Default offsite.retention_cap_days = retention_days + this margin: locks never reach further (storage-cost cap).
OFFSITE_CAP_MARGIN_DAYS = 30
