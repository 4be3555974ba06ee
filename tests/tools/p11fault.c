/*
 * p11fault.so: a PKCS#11 module that forwards every call to a real one and
 * makes chosen calls fail, for the token faults SoftHSM2 never produces by
 * itself (a full token, a module that refuses an attribute).
 *
 *   P11FAULT_MODULE  the real module (SoftHSM2 in the tests); required
 *   P11FAULT         comma-separated faults, each met every time:
 *     category       C_CreateObject with CKA_CERTIFICATE_CATEGORY in its
 *                    template: CKR_ATTRIBUTE_TYPE_INVALID (a v2.11 module)
 *     create-cert    C_CreateObject of a certificate: CKR_DEVICE_MEMORY
 *     destroy-cert   C_DestroyObject of a certificate: CKR_DEVICE_ERROR
 *     final-try      C_GetTokenInfo says CKF_USER_PIN_FINAL_TRY (one PIN
 *                    try left before the token locks)
 *     pin-locked     C_GetTokenInfo says CKF_USER_PIN_LOCKED
 *     pinpad         C_GetTokenInfo says CKF_PROTECTED_AUTHENTICATION_PATH,
 *                    and a C_Login without a PIN gets P11FAULT_PINPAD's, as
 *                    if typed on the reader (unset: CKR_FUNCTION_CANCELED)
 *   P11FAULT_LOG     a file that gets one line per fault injected, so that
 *                    a test knows its fault was met, not missed, and one
 *                    per C_Login with the module's answer ("C_Login rv=0xa0",
 *                    "C_Login-pinpad rv=0x0"): how often p11scep tried a PIN
 *
 * Everything else is the real module's own function list, untouched.
 * A test tool: libc and the standard pkcs11.h (p11-kit's, header only).
 */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#define EXPORT	__attribute__((visibility("default")))

static CK_FUNCTION_LIST ours;
static CK_FUNCTION_LIST_PTR real;

static int fault_wanted(const char *name)
{
	const char *p = getenv("P11FAULT");
	size_t len;

	for (; p != NULL && *p != '\0'; p += len + (p[len] == ',')) {
		len = strcspn(p, ",");
		if (len == strlen(name) && strncmp(p, name, len) == 0)
			return 1;
	}
	return 0;
}

/* One line "NAME rv=0x..." in P11FAULT_LOG; returns rv. */
static CK_RV log_rv(const char *name, CK_RV rv)
{
	const char *path = getenv("P11FAULT_LOG");
	FILE *f;

	if (path != NULL && (f = fopen(path, "a")) != NULL) {
		fprintf(f, "%s rv=0x%lx\n", name, (unsigned long)rv);
		fclose(f);
	}
	return rv;
}

static const CK_ATTRIBUTE *attr_of(CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
	CK_ULONG i;

	for (i = 0; t != NULL && i < n; i++)
		if (t[i].type == type)
			return &t[i];
	return NULL;
}

static int is_class(const CK_ATTRIBUTE *a, CK_OBJECT_CLASS cls)
{
	CK_OBJECT_CLASS v;

	if (a == NULL || a->pValue == NULL || a->ulValueLen != sizeof(v))
		return 0;
	memcpy(&v, a->pValue, sizeof(v));
	return v == cls;
}

static CK_RV fault_create(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n,
			  CK_OBJECT_HANDLE_PTR obj)
{
	if (fault_wanted("category") && attr_of(t, n, CKA_CERTIFICATE_CATEGORY) != NULL)
		return log_rv("category", CKR_ATTRIBUTE_TYPE_INVALID);
	if (fault_wanted("create-cert") && is_class(attr_of(t, n, CKA_CLASS), CKO_CERTIFICATE))
		return log_rv("create-cert", CKR_DEVICE_MEMORY);
	return real->C_CreateObject(s, t, n, obj);
}

static CK_RV fault_destroy(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj)
{
	CK_OBJECT_CLASS cls;
	CK_ATTRIBUTE a = { CKA_CLASS, &cls, sizeof(cls) };

	if (fault_wanted("destroy-cert") && real->C_GetAttributeValue(s, obj, &a, 1) == CKR_OK &&
	    is_class(&a, CKO_CERTIFICATE))
		return log_rv("destroy-cert", CKR_DEVICE_ERROR);
	return real->C_DestroyObject(s, obj);
}

static CK_RV fault_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR ti)
{
	CK_RV rv = real->C_GetTokenInfo(slot, ti);

	if (rv == CKR_OK && fault_wanted("final-try"))
		ti->flags |= CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW;
	if (rv == CKR_OK && fault_wanted("pin-locked"))
		ti->flags |= CKF_USER_PIN_LOCKED;
	if (rv == CKR_OK && fault_wanted("pinpad"))
		ti->flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
	return rv;
}

static CK_RV trace_login(CK_SESSION_HANDLE s, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
			 CK_ULONG pin_len)
{
	const char *typed = getenv("P11FAULT_PINPAD");

	if (pin != NULL || !fault_wanted("pinpad"))
		return log_rv("C_Login", real->C_Login(s, user, pin, pin_len));
	if (typed == NULL)
		return log_rv("C_Login-pinpad", CKR_FUNCTION_CANCELED);
	return log_rv("C_Login-pinpad", real->C_Login(s, user, (CK_UTF8CHAR_PTR)typed,
						       (CK_ULONG)strlen(typed)));
}

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	CK_C_GetFunctionList get_real;
	const char *path = getenv("P11FAULT_MODULE");
	void *dl, *sym;

	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	if (real == NULL) {
		if (path == NULL) {
			fprintf(stderr, "p11fault: P11FAULT_MODULE is not set\n");
			return CKR_GENERAL_ERROR;
		}
		dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		sym = dl != NULL ? dlsym(dl, "C_GetFunctionList") : NULL;
		if (sym == NULL) {
			fprintf(stderr, "p11fault: cannot load %s: %s\n", path, dlerror());
			return CKR_GENERAL_ERROR;
		}
		memcpy(&get_real, &sym, sizeof(get_real));
		if (get_real(&real) != CKR_OK || real == NULL)
			return CKR_GENERAL_ERROR;
		ours = *real;
		ours.C_GetFunctionList = C_GetFunctionList;
		ours.C_CreateObject = fault_create;
		ours.C_DestroyObject = fault_destroy;
		ours.C_Login = trace_login;
		ours.C_GetTokenInfo = fault_token_info;
	}
	*list = &ours;
	return CKR_OK;
}
