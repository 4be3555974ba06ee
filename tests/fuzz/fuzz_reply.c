/*
 * scep_reply_parse on hostile CertReps. Byte 0 of the input picks a variant;
 * the rest is the payload:
 *
 *   bits 0-1  mode 0 (and 3): the payload is a whole CertRep, checked as the
 *             micromdm capture of tests/unit/data was (its CA as signer, its
 *             transactionID, nonce, key and signer cert). Mutations break the
 *             signature, so this mostly exercises the outer parse; nothing is
 *             skipped.
 *             mode 1: the payload is the pkcsPKIEnvelope. The harness signs
 *             it as a correct CertRep with the fuzz CA's key, so every input
 *             reaches the envelope parse and decrypt.
 *             mode 2: the payload is the decrypted degenerate SignedData;
 *             the harness envelopes it (AES-128) to our cert and signs it, so
 *             every input reaches the certs/CRLs bag.
 *   bit 2     strict (refuse legacy envelope ciphers)
 *   bit 3     mode 0: the micromdm FAILURE capture's transactionID and nonce
 *   bit 4     no our_key / our_cert (as when only FAILURE or PENDING is expected)
 *   bits 5-6  modes 1, 2: pkiStatus SUCCESS, FAILURE (with failInfo and text),
 *             PENDING, or an unknown value
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"
#include "fuzz_common.h"
#include "scep_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* From tests/unit/test_scep_msg.c: what the micromdm captures were made with. */
#define MICROMDM_TXID	"384955D4F36E8B0C396D22C9CABC1FE3D0B508599B9FBBB5A1852FB96E35DC79"
#define MICROMDM_NONCE	"1a6e5d7885bd36244f8d025622668811"
#define MICROMDM_FAIL_TXID "40C96E3EA8D007BF50B0F20609AF90ECB73560C40781B65A9787B87C6E2EB128"
#define MICROMDM_FAIL_NONCE "cbc6a322cb2df064f9a7f83536eed27f"

#define OID_MSGTYPE	"2.16.840.1.113733.1.9.2"
#define OID_STATUS	"2.16.840.1.113733.1.9.3"
#define OID_FAILINFO	"2.16.840.1.113733.1.9.4"
#define OID_SNONCE	"2.16.840.1.113733.1.9.5"
#define OID_RNONCE	"2.16.840.1.113733.1.9.6"
#define OID_TXID	"2.16.840.1.113733.1.9.7"
#define OID_FAILTEXT	"1.3.6.1.5.5.7.24.1"

/* Loaded once, kept until exit. */
static X509 *micromdm_ca, *our_cert, *fuzz_ca;
static EVP_PKEY *our_key, *fuzz_ca_key;
static struct scep_txn txn_ok, txn_fail;

static void hex_nonce(const char *hex, unsigned char *out)
{
	size_t i;

	for (i = 0; i < SCEP_NONCE_LEN; i++)
		out[i] = (unsigned char)(OPENSSL_hexchar2int((unsigned char)hex[2 * i]) << 4 |
					 OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]));
}

void fuzz_setup(void)
{
	micromdm_ca = fuzz_load_cert("tests/unit/data/micromdm-getcacert.der");
	our_cert = fuzz_load_cert("tests/unit/data/micromdm-success-signer.pem");
	our_key = fuzz_load_key("tests/unit/data/micromdm-success-key.pem");
	fuzz_ca = fuzz_load_cert("tests/fuzz/data/fuzz-ca.pem");
	fuzz_ca_key = fuzz_load_key("tests/fuzz/data/fuzz-ca-key.pem");
	memcpy(txn_ok.txid, MICROMDM_TXID, sizeof(MICROMDM_TXID));
	hex_nonce(MICROMDM_NONCE, txn_ok.sender_nonce);
	memcpy(txn_fail.txid, MICROMDM_FAIL_TXID, sizeof(MICROMDM_FAIL_TXID));
	hex_nonce(MICROMDM_FAIL_NONCE, txn_fail.sender_nonce);
}

static int add_attr(CMS_SignerInfo *si, const char *oid, int type, const void *v, size_t len)
{
	if (v == NULL)
		return 1;
	return CMS_signed_add1_attr_by_txt(si, oid, type, v, (int)len);
}

static int add_str(CMS_SignerInfo *si, const char *oid, int type, const char *v)
{
	return add_attr(si, oid, type, v, v != NULL ? strlen(v) : 0);
}

/* The pkiStatus, failInfo and failInfoText that bits 5-6 pick. */
static void pick_status(unsigned int sel, const char **st, const char **fi, const char **ft)
{
	static const char *const status[] = { "0", "2", "3", "7" };

	*st = status[sel & 3];
	*fi = (sel & 3) == 1 ? "2" : NULL;
	*ft = (sel & 3) == 1 ? "fuzz: badRequest" : NULL;
}

/* A CertRep signed by the fuzz CA around content; DER into *der (OPENSSL_free). */
static int certrep(const unsigned char *content, size_t clen, unsigned int sel,
		   unsigned char **der)
{
	static const unsigned char snonce[SCEP_NONCE_LEN] = "fuzz-sendernonce";
	const char *st, *fi, *ft;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	BIO *in = NULL;
	int n = -1;

	pick_status(sel >> 5, &st, &fi, &ft);
	*der = NULL;
	cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
	if (cms == NULL)
		goto out;
	si = CMS_add1_signer(cms, fuzz_ca, fuzz_ca_key, EVP_sha256(),
			     CMS_BINARY | CMS_NOSMIMECAP);
	if (si == NULL ||
	    !add_str(si, OID_MSGTYPE, V_ASN1_PRINTABLESTRING, "3") ||
	    !add_str(si, OID_STATUS, V_ASN1_PRINTABLESTRING, st) ||
	    !add_str(si, OID_FAILINFO, V_ASN1_PRINTABLESTRING, fi) ||
	    !add_str(si, OID_FAILTEXT, V_ASN1_UTF8STRING, ft) ||
	    !add_str(si, OID_TXID, V_ASN1_PRINTABLESTRING, txn_ok.txid) ||
	    !add_attr(si, OID_SNONCE, V_ASN1_OCTET_STRING, snonce, sizeof(snonce)) ||
	    !add_attr(si, OID_RNONCE, V_ASN1_OCTET_STRING, txn_ok.sender_nonce, SCEP_NONCE_LEN))
		goto out;
	in = BIO_new_mem_buf(clen > 0 ? (const void *)content : (const void *)"", (int)clen);
	if (in == NULL || !CMS_final(cms, in, NULL, CMS_BINARY))
		goto out;
	n = i2d_CMS_ContentInfo(cms, der);
out:
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return n;
}

/* The payload enveloped to our cert with AES-128-CBC, DER into *der. */
static int envelope(const unsigned char *content, size_t clen, unsigned char **der)
{
	STACK_OF(X509) *to = sk_X509_new_null();
	CMS_ContentInfo *cms = NULL;
	BIO *in = NULL;
	int n = -1;

	*der = NULL;
	if (to == NULL || !sk_X509_push(to, our_cert))
		goto out;
	in = BIO_new_mem_buf(clen > 0 ? (const void *)content : (const void *)"", (int)clen);
	if (in == NULL)
		goto out;
	cms = CMS_encrypt(to, in, EVP_aes_128_cbc(), CMS_BINARY);
	if (cms != NULL)
		n = i2d_CMS_ContentInfo(cms, der);
out:
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	sk_X509_free(to);	/* borrowed our_cert */
	return n;
}

static void parse(const unsigned char *der, size_t len, const struct scep_reply_check *c)
{
	struct scep_reply out;
	enum p11s_err rc;
	int i;

	memset(&out, 0xa5, sizeof(out));	/* the parser must clear its output */
	rc = scep_reply_parse(der, len, c, &out);
	fuzz_report("scep_reply_parse", rc);
	if (rc == P11S_OK) {
		if (out.status == STATUS_SUCCESS && out.certs == NULL)
			__builtin_trap();	/* the contract: never NULL on SUCCESS */
		if (sk_X509_num(out.certs) > 64 || sk_X509_CRL_num(out.crls) > 16)
			__builtin_trap();
		(void)scep_failinfo_name(out.fail_info);
		for (i = 0; i < sk_X509_num(out.certs); i++)
			(void)X509_get_subject_name(sk_X509_value(out.certs, i));
		if (out.status == STATUS_SUCCESS && c->our_key != NULL)
			(void)scep_find_cert_for_key(out.certs, c->our_key);
	}
	scep_reply_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scep_reply_check c = { 0 };
	unsigned char *env = NULL, *der = NULL;
	unsigned int sel;
	int n;

	if (size < 1)
		return 0;
	sel = data[0];
	data++;
	size--;
	c.strict = (sel & 4) != 0;
	if ((sel & 16) == 0) {
		c.our_cert = our_cert;
		c.our_key = our_key;
	}
	switch (sel & 3) {
	case 1:
	case 2:
		c.reply_signer = fuzz_ca;
		c.txn = &txn_ok;
		if ((sel & 3) == 2) {
			n = envelope(data, size, &env);
			if (n <= 0)
				goto out;
			data = env;
			size = (size_t)n;
		}
		n = certrep(data, size, sel, &der);
		if (n <= 0)
			goto out;
		parse(der, (size_t)n, &c);
		break;
	default:
		c.reply_signer = micromdm_ca;
		c.txn = (sel & 8) ? &txn_fail : &txn_ok;
		parse(data, size, &c);
		break;
	}
out:
	OPENSSL_free(der);
	OPENSSL_free(env);
	err_clear();
	return 0;
}
