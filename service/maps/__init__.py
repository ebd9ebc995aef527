"""What the dispatcher map draws: heat layers and vector tiles."""
