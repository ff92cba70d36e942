/* SPDX-License-Identifier: MIT */
/* Topic name validation: a short allow-list, so names never need escaping. */
#include "ringcast/proto/topic_name.h"

bool rc_topic_name_is_valid(const char *name, size_t len) {
  if (len == 0 || len > RC_TOPIC_NAME_MAX) return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':' || c == '/' || c == '@' ||
              (c == RC_TOPIC_RESERVED_CHAR && i == 0);
    if (!ok) return false;
  }
  return true;
}
