"""Pipeline wiring (``lr_recsys_pipeline``) and its runner (compile, run locally, submit)."""
