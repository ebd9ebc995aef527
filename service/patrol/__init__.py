"""Patrols: workers, phones and sessions, GPS fix intake, tracks and coverage."""
