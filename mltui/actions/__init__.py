"""mltui.actions."""
