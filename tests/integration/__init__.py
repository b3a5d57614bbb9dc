"""Tests against real parts: engines, servers, models, the official clients, real agents."""
