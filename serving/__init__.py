"""The Ray Serve application (thin: routes call ``lr_recsys.serve``)."""
