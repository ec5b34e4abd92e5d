/**
 * @file npy.c
 * @brief NumPy .npy read (versions 1.0 and 2.0, '<f4' and '<f2', C order)
 * and write (version 1.0), with a clear one-line message for every
 * malformed file.
 */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

float attn_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf / nan */
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalize */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t attn_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u); /* nan */
    if (absx >= 0x477ff000u)               /* rounds to >= 65520: inf */
        return (uint16_t)(sign | 0x7c00u);
    if (absx < 0x38800000u) { /* below the smallest normal half: subnormal */
        if (absx < 0x33000000u)
            return (uint16_t)sign; /* < half of the smallest subnormal */
        uint32_t man = (absx & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)(absx >> 23); /* value / 2^-24 = man >> shift */
        uint32_t r = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1)))
            r++;
        return (uint16_t)(sign | r);
    }
    /* normal: rebias and round to nearest even on the 13 dropped bits */
    uint32_t v = absx - 0x38000000u;
    uint32_t r = v >> 13, rem = v & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
        r++;
    return (uint16_t)(sign | r);
}

void attn_array_free(attn_array *a)
{
    attn_free(a->data);
    a->data = NULL;
}

/**
 * Find the key @p key of the header dict and return a pointer past its
 * colon (and spaces), or NULL. Only a quoted word at a key's place (after
 * '{' or a ',') is a key: quoted values and tuples are skipped whole, so a
 * string value that contains "'descr': '<f2'" is not taken for the dtype.
 */
static const char *dict_value(const char *h, const char *key)
{
    const size_t klen = strlen(key);
    int at_key = 0;
    for (const char *s = h; *s; s++) {
        if (*s == '{' || *s == ',') {
            at_key = 1;
        } else if (*s == '\'' || *s == '"') {
            const char *e = strchr(s + 1, *s);
            if (!e)
                return NULL;
            if (at_key && (size_t)(e - s - 1) == klen && !strncmp(s + 1, key, klen)) {
                const char *v = e + 1;
                while (*v == ' ')
                    v++;
                if (*v != ':')
                    return NULL;
                v++;
                while (*v == ' ')
                    v++;
                return v;
            }
            s = e; /* past the string, a key or a value */
            at_key = 0;
        } else if (*s == '(') {
            const char *e = strchr(s, ')'); /* a tuple's commas separate no keys */
            if (!e)
                return NULL;
            s = e;
            at_key = 0;
        } else if (*s != ' ') {
            at_key = 0;
        }
    }
    return NULL;
}

/** Write a one-line message and return ATTN_EXIT_BAD_INPUT. */
#define FAIL(...)                                         \
    do {                                                  \
        snprintf(msg, msg_len, __VA_ARGS__);              \
        return ATTN_EXIT_BAD_INPUT;                       \
    } while (0)

/** Most bytes a header can take: the 12-byte preamble of version 2.0 and
 *  a 65536-byte dict (longer ones are refused). */
#define NPY_MAX_HEADER (12 + 65536)

/**
 * Parse the header of a .npy image of @p total bytes whose first @p len
 * bytes are at @p buf (len ≥ min(total, NPY_MAX_HEADER)): the dtype, the
 * order, the shape, and that @p total holds exactly the data the shape
 * promises. Sets out->rank, out->shape, out->was_fp16, *data_off and
 * *count; allocates nothing, so a file of the wrong shape or size is
 * refused before any of its data is read.
 */
static int parse_header(const unsigned char *buf, size_t len, size_t total, const char *name,
                        attn_array *out, size_t *data_off, size_t *count_out, char *msg,
                        size_t msg_len)
{
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        FAIL("%s: not a .npy file (bad magic)", name);
    int major = buf[6];
    size_t hlen, off;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            FAIL("%s: truncated header", name);
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 |
               (size_t)buf[11] << 24;
        off = 12;
    } else {
        FAIL("%s: unsupported .npy version %d.%d (1.0 and 2.0 are read)", name,
             major, buf[7]);
    }
    if (hlen > len - off)
        FAIL("%s: truncated header (%zu bytes declared, %zu present)", name, hlen,
             len - off);
    if (hlen > 65536)
        FAIL("%s: header too long (%zu bytes)", name, hlen);
    char h[65537];
    memcpy(h, buf + off, hlen);
    h[hlen] = '\0';
    if (memchr(h, '\0', hlen))
        FAIL("%s: header contains a NUL byte", name);

    const char *d = dict_value(h, "descr");
    if (!d || (*d != '\'' && *d != '"'))
        FAIL("%s: header has no 'descr'", name);
    int fp16 = 0;
    if (!strncmp(d + 1, "<f4", 3) && d[4] == d[0])
        fp16 = 0;
    else if (!strncmp(d + 1, "<f2", 3) && d[4] == d[0])
        fp16 = 1;
    else if (!strncmp(d + 1, ">f4", 3) || !strncmp(d + 1, ">f2", 3))
        FAIL("%s: big-endian data ('%.3s') is not supported; save as little-endian", name,
             d + 1);
    else {
        char got[16] = {0};
        for (int i = 0; i < 15 && d[1 + i] && d[1 + i] != d[0]; i++)
            got[i] = isprint((unsigned char)d[1 + i]) ? d[1 + i] : '?';
        FAIL("%s: dtype '%s' is not supported (float32 '<f4' or float16 '<f2')", name, got);
    }

    const char *f = dict_value(h, "fortran_order");
    if (!f)
        FAIL("%s: header has no 'fortran_order'", name);
    if (!strncmp(f, "True", 4))
        FAIL("%s: Fortran-order arrays are not supported; save in C order", name);
    if (strncmp(f, "False", 5) != 0 || isalnum((unsigned char)f[5]) || f[5] == '_')
        FAIL("%s: bad 'fortran_order' value", name); /* "Falsehood" is not False */

    const char *s = dict_value(h, "shape");
    if (!s || *s != '(')
        FAIL("%s: header has no 'shape' tuple", name);
    s++;
    int rank = 0;
    size_t count = 1;
    for (;;) {
        while (*s == ' ')
            s++;
        if (*s == ')')
            break;
        if (!isdigit((unsigned char)*s))
            FAIL("%s: bad 'shape' in header", name);
        if (rank == 4)
            FAIL("%s: rank greater than 4 is not supported", name);
        errno = 0;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (errno || v < 0 || v > (1LL << 40))
            FAIL("%s: shape dimension out of range", name);
        out->shape[rank++] = v;
        if (v != 0 && count > ((size_t)1 << 40) / (size_t)v)
            FAIL("%s: array too large", name);
        count *= (size_t)v;
        s = end;
        while (*s == ' ')
            s++;
        if (*s == ',')
            s++;
        else if (*s != ')')
            FAIL("%s: bad 'shape' in header", name);
    }
    if (rank == 0)
        FAIL("%s: rank-0 arrays are not supported", name);
    out->rank = rank;

    size_t esz = fp16 ? 2 : 4;
    size_t have = total - off - hlen;
    if (count > have / esz)
        FAIL("%s: truncated data (%zu bytes expected, %zu present)", name, count * esz,
             have);
    if (have != count * esz)
        FAIL("%s: %zu trailing bytes after the data", name, have - count * esz);
    out->was_fp16 = fp16;
    *data_off = off + hlen;
    *count_out = count;
    return 0;
}

/** Convert @p count little-endian elements at @p src (float16 when @p fp16,
 *  else float32) to floats at @p dst. */
static void convert_data(float *dst, const unsigned char *src, size_t count, int fp16)
{
    if (fp16) {
        for (size_t i = 0; i < count; i++)
            dst[i] = attn_half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
    } else {
        memcpy(dst, src, count * 4);
    }
}

int attn_npy_parse(const unsigned char *buf, size_t len, const char *name,
                   attn_array *out, char *msg, size_t msg_len)
{
    size_t off = 0, count = 0;
    int rc = parse_header(buf, len, len, name, out, &off, &count, msg, msg_len);
    if (rc)
        return rc;
    out->data = attn_alloc(count ? count * sizeof(float) : 1);
    if (!out->data) {
        snprintf(msg, msg_len, "%s: out of host memory: needed %zu bytes", name,
                 count * sizeof(float));
        return ATTN_EXIT_RESOURCE;
    }
    convert_data(out->data, buf + off, count, out->was_fp16);
    return 0;
}

/** attn_npy_read() and attn_npy_peek(): with @p with_data 0, the header
 *  and the size checks only (out->data stays NULL). */
static int npy_read(const char *path, attn_array *out, int with_data, char *msg, size_t msg_len)
{
    memset(out, 0, sizeof *out);
    /* O_NONBLOCK: a FIFO opens at once instead of waiting for a writer, and
     * is then refused below with every other file that is not regular */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        FAIL("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        FAIL("%s: not a regular file", path);
    }
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        close(fd);
        FAIL("%s: cannot open: %s", path, strerror(errno));
    }
    /* The header first: shape, type and the file's size are checked before
     * any data is read or any memory for it taken. */
    const size_t total = (size_t)st.st_size;
    unsigned char *head = malloc(NPY_MAX_HEADER);
    if (!head) {
        fclose(fp);
        snprintf(msg, msg_len, "%s: out of host memory: needed %d bytes", path, NPY_MAX_HEADER);
        return ATTN_EXIT_RESOURCE;
    }
    const size_t want = total < NPY_MAX_HEADER ? total : NPY_MAX_HEADER;
    size_t off = 0, count = 0;
    int rc = fread(head, 1, want, fp) == want
                 ? parse_header(head, want, total, path, out, &off, &count, msg, msg_len)
                 : (snprintf(msg, msg_len, "%s: read error", path), ATTN_EXIT_BAD_INPUT);
    free(head);
    if (rc || !with_data) {
        fclose(fp);
        return rc;
    }
    /* The data, once, into the final buffer: float32 straight in; float16
     * read into the buffer's upper half and widened in place, front to back
     * (element i's two bytes sit at byte 2·(count + i), past float i's). */
    out->data = attn_alloc(count ? count * sizeof(float) : 1);
    if (!out->data) {
        fclose(fp);
        snprintf(msg, msg_len, "%s: out of host memory: needed %zu bytes", path,
                 count * sizeof(float));
        return ATTN_EXIT_RESOURCE;
    }
    const size_t esz = out->was_fp16 ? 2 : 4;
    unsigned char *dst = (unsigned char *)out->data + (out->was_fp16 ? 2 * count : 0);
    if (fseek(fp, (long)off, SEEK_SET) != 0 || fread(dst, esz, count, fp) != count) {
        fclose(fp);
        attn_array_free(out);
        FAIL("%s: read error (the file changed while it was read?)", path);
    }
    fclose(fp);
    if (out->was_fp16)
        convert_data(out->data, dst, count, 1);
    return 0;
}

int attn_npy_read(const char *path, attn_array *out, char *msg, size_t msg_len)
{
    return npy_read(path, out, 1, msg, msg_len);
}

int attn_npy_peek(const char *path, attn_array *out, char *msg, size_t msg_len)
{
    return npy_read(path, out, 0, msg, msg_len);
}

int attn_npy_write_stream(FILE *fp, const char *path, const float *data, int rank,
                          const int64_t *shape, int as_fp16, char *msg, size_t msg_len)
{
    char dict[256], shp[128] = "";
    size_t count = 1;
    for (int i = 0; i < rank; i++) {
        size_t n = strlen(shp);
        snprintf(shp + n, sizeof shp - n, "%lld,%s", (long long)shape[i],
                 (i + 1 < rank) ? " " : "");
        count *= (size_t)shape[i];
    }
    if (rank > 1) /* (2, 3) not (2, 3,) */
        shp[strlen(shp) - 1] = '\0';
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                     as_fp16 ? "<f2" : "<f4", shp);
    /* pad with spaces so that 10 + header length is a multiple of 64, end in \n */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)n + pad + 1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    int ok = fwrite(pre, 1, 10, fp) == 10 && fwrite(dict, 1, (size_t)n, fp) == (size_t)n;
    for (size_t i = 0; ok && i < pad; i++)
        ok = fputc(' ', fp) != EOF;
    ok = ok && fputc('\n', fp) != EOF;
    if (as_fp16) {
        for (size_t i = 0; ok && i < count; i++) {
            uint16_t h = attn_float_to_half(data[i]);
            unsigned char b[2] = {(unsigned char)(h & 0xff), (unsigned char)(h >> 8)};
            ok = fwrite(b, 1, 2, fp) == 2;
        }
    } else {
        ok = ok && fwrite(data, 4, count, fp) == count; /* x86/ARM: little-endian */
    }
    ok = ok && fflush(fp) == 0;
    if (!ok) {
        int e = errno;
        snprintf(msg, msg_len, "%s: cannot write: %s", path, strerror(e));
        return e == ENOSPC ? ATTN_EXIT_RESOURCE : ATTN_EXIT_BAD_INPUT;
    }
    return 0;
}

int attn_npy_write(const char *path, const float *data, int rank,
                   const int64_t *shape, int as_fp16, char *msg, size_t msg_len)
{
    /* one output, all or none: a temporary beside it, then the rename */
    attn_outputs s;
    attn_outputs_init(&s);
    int rc = attn_outputs_add(&s, "output", path, msg, msg_len);
    if (rc) {
        /* keep the reader's wording: "PATH: cannot write: ..." */
        return rc;
    }
    if ((rc = attn_outputs_write(&s, path, data, rank, shape, as_fp16, msg, msg_len)) ||
        (rc = attn_outputs_commit(&s, msg, msg_len))) {
        attn_outputs_discard(&s);
        return rc;
    }
    return 0;
}
