"""HTTP routers, one per resource; handlers call domain services and hold no queries."""
