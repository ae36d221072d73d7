"""mltui.screens."""
