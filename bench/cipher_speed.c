/* SPDX-License-Identifier: MIT */
/* ringcast-cipher-speed: how fast the linked wolfCrypt seals a 16 KiB TLS record
 * with each AEAD the TLS stream may negotiate, so the server's suite order can
 * follow what this build of wolfSSL does fastest (Debian's has no AES-NI code).
 * Prints MB/s per AEAD and their ratio; run it on an idle core. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define RECORD 16384

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 4000;
  if (rounds <= 0) {
    fprintf(stderr, "usage: ringcast-cipher-speed [RECORDS]\n");
    return 2;
  }
  static unsigned char in[RECORD], out[RECORD], tag[16], key[32], iv[12], aad[13];
  Aes aes;
  if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0 || wc_AesGcmSetKey(&aes, key, 16) != 0) {
    fprintf(stderr, "ringcast-cipher-speed: AES-GCM set-up failed\n");
    return 1;
  }
  double t0 = now_s();
  for (int i = 0; i < rounds; i++)
    if (wc_AesGcmEncrypt(&aes, out, in, sizeof in, iv, sizeof iv, tag, sizeof tag, aad, sizeof aad))
      return 1;
  double t1 = now_s();
  for (int i = 0; i < rounds; i++)
    if (wc_ChaCha20Poly1305_Encrypt(key, iv, aad, sizeof aad, in, sizeof in, out, tag)) return 1;
  double t2 = now_s();
  wc_AesFree(&aes);
  double mb = (double)rounds * RECORD / 1e6;
  double gcm = mb / (t1 - t0), chacha = mb / (t2 - t1);
  printf("AES-128-GCM        %8.0f MB/s\nChaCha20-Poly1305  %8.0f MB/s\nChaCha20 / AES-GCM %8.2fx\n",
         gcm, chacha, chacha / gcm);
  return 0;
}
