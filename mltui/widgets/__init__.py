"""mltui.widgets."""
