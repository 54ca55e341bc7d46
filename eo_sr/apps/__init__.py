"""Apps served from JupyterLab (Voila): the QC explorer app (:mod:`eo_sr.apps.qc_app`)."""
