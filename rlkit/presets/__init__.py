"""Per-(agent, env) hyperparameter presets as YAML data files (one file per agent, one block per env)."""
