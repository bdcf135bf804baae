"""The render daemon (`c2r serve`): a gRPC front end, a window scheduler, engine processes.

Front end: ``server`` (the gRPC service), ``session`` (a Realify stream), ``jobs`` with
``job_store`` and ``job_io`` (batch export), checks in ``session_config``, ``frame_check``
and ``planes``, frames in ``frame_store``. Between them and the GPU: ``window_loop``,
``scheduler``, ``engines`` / ``engine_client`` (spawn, feed and watch the engines) and
``preview`` (the preview relay). The engine process itself is ``engine``. See README.md.
"""
