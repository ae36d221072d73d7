"""mltui.demo."""
