"""Assessment (考核评价): indicators of case flow and field work per period and subject."""
