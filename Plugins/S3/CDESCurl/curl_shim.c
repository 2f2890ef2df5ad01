#include "cdes_curl.h"

CURLcode cdes_curl_set_long(CURL *curl, CURLoption option, long value) { return curl_easy_setopt(curl, option, value); }
CURLcode cdes_curl_set_offset(CURL *curl, CURLoption option, curl_off_t value) { return curl_easy_setopt(curl, option, value); }
CURLcode cdes_curl_set_string(CURL *curl, CURLoption option, const char *value) { return curl_easy_setopt(curl, option, value); }
CURLcode cdes_curl_set_pointer(CURL *curl, CURLoption option, void *value) { return curl_easy_setopt(curl, option, value); }

CURLcode cdes_curl_set_writer(CURL *curl, cdes_curl_data_fn fn, void *user) {
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, fn);
    return rc != CURLE_OK ? rc : curl_easy_setopt(curl, CURLOPT_WRITEDATA, user);
}

CURLcode cdes_curl_set_header_reader(CURL *curl, cdes_curl_data_fn fn, void *user) {
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, fn);
    return rc != CURLE_OK ? rc : curl_easy_setopt(curl, CURLOPT_HEADERDATA, user);
}

CURLcode cdes_curl_set_reader(CURL *curl, cdes_curl_data_fn fn, void *user) {
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_READFUNCTION, fn);
    return rc != CURLE_OK ? rc : curl_easy_setopt(curl, CURLOPT_READDATA, user);
}

CURLcode cdes_curl_info_long(CURL *curl, CURLINFO info, long *value) { return curl_easy_getinfo(curl, info, value); }
