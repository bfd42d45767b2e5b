"""Reports people look at: data-quality HTML per run."""
