"""Recommender networks. ``registry`` maps model names to builders."""
