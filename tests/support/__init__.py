"""Test helpers shared across tiers (scripted model for agents)."""
