from akhbar.pipelines.cli import _entry

_entry()
