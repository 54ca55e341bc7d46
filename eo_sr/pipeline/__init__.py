"""Orchestration: the pipeline's steps chained through files (:mod:`eo_sr.pipeline.steps`).

The command line and the quickstart call these functions; a YAML-configured build on
Dask will too.
"""
