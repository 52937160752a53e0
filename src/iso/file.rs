//! File access (`scm_file_*`, ISCardFileAccess): the object `scm_create_file_access` makes.

/// A file access object: it refers to its manager by token, so it follows the manager through
/// reconnection and re-attachment and is refused once the manager is released.
pub struct FileAccess {
    pub manager: usize,
}

impl FileAccess {
    pub fn new(manager: usize) -> FileAccess {
        FileAccess { manager }
    }
}
