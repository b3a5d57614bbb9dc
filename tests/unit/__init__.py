"""Tests with no model and no server: pure logic, templates, translation, the desktop state."""
