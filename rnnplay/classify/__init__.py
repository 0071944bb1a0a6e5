"""The seed's synthetic classifier experiment, tagging tasks and hidden-state inspection."""
