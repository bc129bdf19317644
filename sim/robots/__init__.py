"""Robot descriptions built with MjSpec."""
