"""The tenant-owner portal: non-staff users manage their own tenants at /portal/."""
