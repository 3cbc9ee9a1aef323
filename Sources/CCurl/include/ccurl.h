#ifndef CCURL_H
#define CCURL_H
// Swift cannot call the variadic curl_easy_setopt/curl_easy_getinfo/curl_multi_setopt:
// these typed wrappers are all this C target adds to libcurl.
#include <curl/curl.h>

typedef size_t (*ccurl_data_callback)(char *ptr, size_t size, size_t nmemb, void *userdata);

CURLcode ccurl_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode ccurl_easy_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode ccurl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode ccurl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode ccurl_easy_setopt_data_callback(CURL *handle, CURLoption option, ccurl_data_callback value);
CURLcode ccurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode ccurl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value);
CURLMcode ccurl_multi_setopt_long(CURLM *handle, CURLMoption option, long value);

// CURLMsg is a struct with a union; these read it without exposing the union to Swift.
int ccurl_msg_is_done(const CURLMsg *msg);
CURL *ccurl_msg_easy_handle(const CURLMsg *msg);
CURLcode ccurl_msg_result(const CURLMsg *msg);

#endif
