#ifndef CDES_CURL_H
#define CDES_CURL_H
// libcurl's easy interface, with the variadic curl_easy_setopt/curl_easy_getinfo wrapped in
// functions of fixed types, which Swift can call.
#include <curl/curl.h>

typedef size_t (*cdes_curl_data_fn)(char *data, size_t size, size_t count, void *user);

CURLcode cdes_curl_set_long(CURL *curl, CURLoption option, long value);
CURLcode cdes_curl_set_offset(CURL *curl, CURLoption option, curl_off_t value);
CURLcode cdes_curl_set_string(CURL *curl, CURLoption option, const char *value);
CURLcode cdes_curl_set_pointer(CURL *curl, CURLoption option, void *value);
/// The body sink (CURLOPT_WRITEFUNCTION/WRITEDATA).
CURLcode cdes_curl_set_writer(CURL *curl, cdes_curl_data_fn fn, void *user);
/// The header sink (CURLOPT_HEADERFUNCTION/HEADERDATA).
CURLcode cdes_curl_set_header_reader(CURL *curl, cdes_curl_data_fn fn, void *user);
/// The upload source (CURLOPT_READFUNCTION/READDATA).
CURLcode cdes_curl_set_reader(CURL *curl, cdes_curl_data_fn fn, void *user);
CURLcode cdes_curl_info_long(CURL *curl, CURLINFO info, long *value);
#endif
