"""Who may do what: accounts, roles and permissions, API keys, tokens, and the audit log."""
