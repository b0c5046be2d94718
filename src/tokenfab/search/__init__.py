"""Search: design-space exploration, deployment search and fleet planning over the models below."""
