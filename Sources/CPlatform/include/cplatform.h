// Linux calls Swift cannot reach directly: renameat2 (glibc declares it only under _GNU_SOURCE,
// which Swift's Glibc module does not set) and an async-signal-safe handler that removes
// registered temporary outputs on SIGINT, SIGTERM and SIGHUP.
#ifndef SMELT_CPLATFORM_H
#define SMELT_CPLATFORM_H

/// rename(2) that fails with EEXIST instead of replacing `to` (renameat2 RENAME_NOREPLACE).
/// Returns 0, or -1 with errno set (EINVAL/ENOSYS where the file system or kernel lacks it).
int smelt_rename_noreplace(const char *from, const char *to);

/// Atomically swaps the names `a` and `b` (renameat2 RENAME_EXCHANGE); both must exist.
int smelt_rename_exchange(const char *a, const char *b);

/// Starts writeback of a file range without waiting (sync_file_range SYNC_FILE_RANGE_WRITE), so
/// the fsync before publishing has little left to flush. Errors are ignored (a hint only).
void smelt_start_writeback(int fd, long long offset, long long count);

/// Waits until a range whose writeback was started is on disk and drops its pages from the page
/// cache (sync_file_range with WAIT_BEFORE | WRITE | WAIT_AFTER, then POSIX_FADV_DONTNEED), so a
/// large output does not fill memory with dirty pages the kernel then throttles on. Errors are
/// ignored (a hint only; the fsync before publishing is what makes the file durable).
void smelt_finish_writeback(int fd, long long offset, long long count);

/// Registers a temporary path the signal handler removes (a folder: its entries, then itself).
/// Returns a slot number, or -1 when the table is full or the path too long.
int smelt_cleanup_add(const char *path, int is_directory);

/// Forgets a slot (after the path was published or removed).
void smelt_cleanup_remove(int slot);

/// Installs the handler for SIGINT, SIGTERM and SIGHUP (once; a signal the process ignores stays
/// ignored). The handler removes every registered path, restores the default action and
/// re-raises the signal, so the process still dies of it.
void smelt_cleanup_install(void);

/// Removes a folder's entries (one level: temporary output folders are flat) and the folder.
/// Async-signal-safe. Returns 0, or -1 with errno set.
int smelt_remove_flat_directory(const char *path);

/// Registers a read-only file mapping with the SIGBUS guard (installed on first use): a fault
/// inside it (the file shrank under the mapping) maps zero pages over the rest of the mapping,
/// marks the slot and lets the faulting read go on, instead of killing the process. A SIGBUS
/// anywhere else keeps its default action. Returns a slot, or -1 when the table is full.
int smelt_mapping_add(const void *base, unsigned long length);

/// 1 when a read of the slot's mapping faulted (the file shrank), else 0.
int smelt_mapping_faulted(int slot);

/// Forgets a slot (before the mapping is unmapped).
void smelt_mapping_remove(int slot);

#endif
