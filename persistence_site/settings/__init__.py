"""Settings modules: ``base`` (shared), ``local`` (embedded default), ``production``, ``test``."""
