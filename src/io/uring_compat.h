/* SPDX-License-Identifier: MIT */
/* What Debian's liburing 2.3 headers lack or get wrong for the kernels ringcast
 * runs on. Everything here only fills SQE fields; the kernel does not care which
 * liburing built them. */
#ifndef RINGCAST_IO_URING_COMPAT_H
#define RINGCAST_IO_URING_COMPAT_H

#include <liburing.h>

/* liburing 2.3's io_uring_prep_accept_direct adds 1 to the slot even for
 * IORING_FILE_INDEX_ALLOC, wrapping it to 0, which means "no direct descriptor"
 * (fixed in 2.4). Kernel 5.19+ reads file_index == IORING_FILE_INDEX_ALLOC as
 * "pick a free slot and return it in cqe->res". */
static inline void rc_prep_accept_direct_alloc(struct io_uring_sqe *sqe, int fd,
                                               struct sockaddr *addr,
                                               socklen_t *addr_len) {
  io_uring_prep_accept(sqe, fd, addr, addr_len, 0);
  sqe->file_index = IORING_FILE_INDEX_ALLOC;
}

#endif
