"""The reference API: agents, data sources, interactions, query and chat."""
