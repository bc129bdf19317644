"""Small shared utilities: atomic file writes and content hashing."""

from robot_skills.utils.atomic import (
    atomic_dir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    file_sha256,
)

__all__ = ["atomic_dir", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
           "file_sha256"]
