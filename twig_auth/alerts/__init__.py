"""Security alerts: repeated failed logins, locked accounts, blocked IPs and reused refresh tokens, mailed to the
org's admins (and sent as ``security_alert_raised``), at most once per org, kind and subject per window."""
