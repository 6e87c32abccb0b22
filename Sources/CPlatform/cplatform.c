#define _GNU_SOURCE
#include "cplatform.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

int smelt_rename_noreplace(const char *from, const char *to) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int smelt_rename_exchange(const char *a, const char *b) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
#else
    errno = ENOSYS;
    return -1;
#endif
}

void smelt_start_writeback(int fd, long long offset, long long count) {
    sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE);
}

void smelt_finish_writeback(int fd, long long offset, long long count) {
    sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    posix_fadvise(fd, offset, count, POSIX_FADV_DONTNEED);
}

// The registry: fixed slots, so the handler never allocates. A slot's state goes 0 (free) →
// 1 (being filled) → 2 (live) → 0; the handler only reads live slots.
enum { SLOTS = 256, PATH_BYTES = 4096 };
static _Atomic int slot_state[SLOTS];
static int slot_is_directory[SLOTS];
static char slot_path[SLOTS][PATH_BYTES];

int smelt_cleanup_add(const char *path, int is_directory) {
    size_t n = strlen(path);
    if (n >= PATH_BYTES) return -1;
    for (int i = 0; i < SLOTS; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&slot_state[i], &expected, 1)) {
            memcpy(slot_path[i], path, n + 1);
            slot_is_directory[i] = is_directory;
            atomic_store(&slot_state[i], 2);
            return i;
        }
    }
    return -1;
}

void smelt_cleanup_remove(int slot) {
    if (slot >= 0 && slot < SLOTS) atomic_store(&slot_state[slot], 0);
}

struct linux_dirent64 {
    unsigned long long d_ino;
    long long d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

int smelt_remove_flat_directory(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[4096] __attribute__((aligned(8)));
    // Entries removed while listing can make the listing skip others: list again until a
    // listing finds nothing (bounded, in case something keeps adding files).
    for (int round = 0; round < 64; round++) {
        lseek(fd, 0, SEEK_SET);
        int found = 0;
        long n;
        while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
            for (long off = 0; off < n;) {
                struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
                off += d->d_reclen;
                if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) continue;
                unlinkat(fd, d->d_name, 0);
                found = 1;
            }
        }
        if (!found) break;
    }
    close(fd);
    return rmdir(path);
}

static void remove_registered(void) {
    // Files first, then folders (a folder may hold registered files).
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < SLOTS; i++) {
            if (atomic_load(&slot_state[i]) != 2) continue;
            if (pass == 0 && !slot_is_directory[i]) unlink(slot_path[i]);
            if (pass == 1 && slot_is_directory[i]) smelt_remove_flat_directory(slot_path[i]);
        }
    }
}

static void on_signal(int sig) {
    int saved = errno;
    remove_registered();
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, 0);
    errno = saved;
    // Delivered with the default action once this handler returns (the signal is blocked here).
    raise(sig);
}

static atomic_int installed;

void smelt_cleanup_install(void) {
    if (atomic_exchange(&installed, 1)) return;
    const int signals[] = {SIGINT, SIGTERM, SIGHUP};
    for (unsigned k = 0; k < sizeof signals / sizeof signals[0]; k++) {
        struct sigaction old;
        if (sigaction(signals[k], 0, &old) != 0) continue;
        if (old.sa_handler == SIG_IGN) continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaddset(&sa.sa_mask, SIGINT);
        sigaddset(&sa.sa_mask, SIGTERM);
        sigaddset(&sa.sa_mask, SIGHUP);
        sigaction(signals[k], &sa, 0);
    }
}

// The SIGBUS guard: mapped source files, fixed slots.
enum { MAPPINGS = 256 };
static _Atomic uintptr_t mapping_base[MAPPINGS];
static _Atomic uintptr_t mapping_length[MAPPINGS];
static _Atomic int mapping_fault[MAPPINGS];
static atomic_int bus_installed;

static void on_bus(int sig, siginfo_t *info, void *context) {
    (void)context;
    uintptr_t addr = (uintptr_t)info->si_addr;
    for (int i = 0; i < MAPPINGS; i++) {
        uintptr_t base = atomic_load(&mapping_base[i]);
        uintptr_t length = atomic_load(&mapping_length[i]);
        if (base == 0 || addr < base || addr - base >= length) continue;
        long page = sysconf(_SC_PAGESIZE);
        uintptr_t start = addr & ~(uintptr_t)(page - 1);
        // Zero pages from the faulting page to the mapping's end; the read is retried on return.
        void *p = mmap((void *)start, base + length - start, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p == MAP_FAILED) break;
        atomic_store(&mapping_fault[i], 1);
        return;
    }
    // Not a mapped source: the default action (the fault repeats and kills the process).
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, 0);
}

int smelt_mapping_add(const void *base, unsigned long length) {
    if (!atomic_exchange(&bus_installed, 1)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_bus;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGBUS, &sa, 0);
    }
    for (int i = 0; i < MAPPINGS; i++) {
        uintptr_t expected = 0;
        if (atomic_compare_exchange_strong(&mapping_base[i], &expected, (uintptr_t)1)) {
            atomic_store(&mapping_fault[i], 0);
            atomic_store(&mapping_length[i], (uintptr_t)length);
            atomic_store(&mapping_base[i], (uintptr_t)base);
            return i;
        }
    }
    return -1;
}

int smelt_mapping_faulted(int slot) {
    return slot >= 0 && slot < MAPPINGS ? atomic_load(&mapping_fault[slot]) : 0;
}

void smelt_mapping_remove(int slot) {
    if (slot < 0 || slot >= MAPPINGS) return;
    atomic_store(&mapping_length[slot], 0);
    atomic_store(&mapping_base[slot], 0);
}
