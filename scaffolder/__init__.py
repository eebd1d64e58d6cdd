"""Scaffolder: templates → rendered change sets → checked pull requests on a forge."""
