/* store_crypt.c: sealed objects, for a store with a key. A sealed object is
 *   "tendenc1" | secretstream header (24) | chunks
 * where the chunks are libsodium's XChaCha20-Poly1305 secretstream over the object's
 * zstd frame, cut in TEND_SEAL_CHUNK pieces, the last one tagged FINAL (so a cut-short
 * object is told from a whole one). The magic lets a store hold plain frames (written
 * before encryption was turned on) and sealed ones side by side. The object's name, the
 * SHA-256 of its plaintext, is checked after opening as for any object. */
#include <errno.h>
#include <string.h>

#include "tend.h"
#include "store.h"

#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define HEADER crypto_secretstream_xchacha20poly1305_HEADERBYTES

int tend_is_sealed(const char *p, size_t n)
{
	return n >= TEND_SEAL_MAGIC_LEN && memcmp(p, TEND_SEAL_MAGIC, TEND_SEAL_MAGIC_LEN) == 0;
}

size_t tend_seal_bound(size_t n)
{
	return TEND_SEAL_MAGIC_LEN + HEADER + n + (n / TEND_SEAL_CHUNK + 1) * ABYTES;
}

int tend_seal_begin(tend_seal *s, const unsigned char *key, tend_emit emit, void *ctx)
{
	unsigned char head[TEND_SEAL_MAGIC_LEN + HEADER];
	memcpy(head, TEND_SEAL_MAGIC, TEND_SEAL_MAGIC_LEN);
	crypto_secretstream_xchacha20poly1305_init_push(&s->state, head + TEND_SEAL_MAGIC_LEN, key);
	s->have = 0;
	s->stage = 1;
	return emit(ctx, (const char *)head, sizeof head);
}

static int push_chunk(tend_seal *s, unsigned char tag, tend_emit emit, void *ctx)
{
	unsigned char out[TEND_SEAL_CHUNK + ABYTES];
	unsigned long long n;
	crypto_secretstream_xchacha20poly1305_push(&s->state, out, &n, s->buf, s->have, NULL, 0, tag);
	s->have = 0;
	return emit(ctx, (const char *)out, (size_t)n);
}

/* Seal n more bytes of the frame; whole chunks are emitted as they fill. */
int tend_seal_push(tend_seal *s, const char *p, size_t n, tend_emit emit, void *ctx)
{
	while (n) {
		if (s->have == TEND_SEAL_CHUNK && push_chunk(s, 0, emit, ctx) != 0)
			return -1;
		size_t k = TEND_SEAL_CHUNK - s->have < n ? TEND_SEAL_CHUNK - s->have : n;
		memcpy(s->buf + s->have, p, k);
		s->have += k;
		p += k;
		n -= k;
	}
	return 0;
}

int tend_seal_end(tend_seal *s, tend_emit emit, void *ctx)
{
	int rc = push_chunk(s, crypto_secretstream_xchacha20poly1305_TAG_FINAL, emit, ctx);
	sodium_memzero(&s->state, sizeof s->state);
	return rc;
}

typedef struct {
	char *p;
	size_t n;
} mem_sink;

static int to_mem(void *ctx, const char *p, size_t n)
{
	mem_sink *m = ctx;
	memcpy(m->p + m->n, p, n);
	m->n += n;
	return 0;
}

/* A whole frame sealed into out (tend_seal_bound(n) bytes); returns the length. */
size_t tend_seal_buffer(tend_seal *s, const unsigned char *key, const char *in, size_t n, char *out)
{
	mem_sink m = {out, 0};
	tend_seal_begin(s, key, to_mem, &m);
	tend_seal_push(s, in, n, to_mem, &m);
	tend_seal_end(s, to_mem, &m);
	return m.n;
}

/* Opening: feed the sealed bytes as they come; the frame goes to emit. A full chunk is
 * only opened once more bytes follow it, because the last chunk may be full too.
 * 0, EBADMSG (damaged, cut short, or not sealed with this key), or emit's errno. */
int tend_unseal_push(tend_seal *s, const unsigned char *key, const char *p, size_t n, tend_emit emit, void *ctx)
{
	while (n) {
		if (s->stage == 0) { /* the magic and the header */
			size_t want = TEND_SEAL_MAGIC_LEN + HEADER - s->have;
			size_t k = want < n ? want : n;
			memcpy(s->buf + s->have, p, k);
			s->have += k;
			p += k;
			n -= k;
			if (s->have < TEND_SEAL_MAGIC_LEN + HEADER)
				continue;
			if (!tend_is_sealed((const char *)s->buf, s->have) ||
			    crypto_secretstream_xchacha20poly1305_init_pull(&s->state, s->buf + TEND_SEAL_MAGIC_LEN, key) != 0)
				return EBADMSG;
			s->have = 0;
			s->stage = 1;
			continue;
		}
		if (s->stage == 2)
			return EBADMSG; /* bytes after the final chunk */
		if (s->have == TEND_SEAL_CHUNK + ABYTES) {
			int err = tend_unseal_end(s, emit, ctx, 0);
			if (err)
				return err;
		}
		size_t k = TEND_SEAL_CHUNK + ABYTES - s->have < n ? TEND_SEAL_CHUNK + ABYTES - s->have : n;
		memcpy(s->buf + s->have, p, k);
		s->have += k;
		p += k;
		n -= k;
	}
	return 0;
}

/* Open the chunk held; final says it must be the last one (the input has ended). */
int tend_unseal_end(tend_seal *s, tend_emit emit, void *ctx, int final)
{
	unsigned char out[TEND_SEAL_CHUNK];
	unsigned long long n;
	unsigned char tag;
	if (s->stage != 1 || s->have < ABYTES ||
	    crypto_secretstream_xchacha20poly1305_pull(&s->state, out, &n, &tag, s->buf, s->have, NULL, 0) != 0)
		return EBADMSG;
	s->have = 0;
	if ((tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) != final)
		return EBADMSG;
	if (final) {
		s->stage = 2;
		sodium_memzero(&s->state, sizeof s->state);
	}
	return n && emit(ctx, (const char *)out, (size_t)n) != 0 ? (errno ? errno : EIO) : 0;
}
