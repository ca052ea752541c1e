"""Reports read workdirs (never import JAX or execute anything from them): one run's report and
figures, and a sweep's tables and learning curves."""
