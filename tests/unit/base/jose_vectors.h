/*
 * Fixed JOSE vectors for test_jose.c: RFC 7515 appendix A and RFC 8037 A.4 as published,
 * then keys and tokens made once with PyJWT 2.6 and cryptography 38 (Debian python3-jwt):
 * an RSA-2048 key (kid rsa1), P-256 (ec256, alg ES256), P-384 (ec384), P-521 (ec521) and
 * Ed25519 (ed1) as one JWK Set; a token for each algorithm with the claims
 *   {"iss":"https://idp.test/realm","aud":"pets","sub":"alice","exp":2000000000,
 *    "nbf":1600000000,"iat":1600000000,"scope":"pets:read pets:write"}
 * (HS* with the secrets SECRET256/384/512, below); the RS256 one again without kid; an
 * RSA-1024 JWK; and an HS256 token (kid rsa1) whose HMAC key is the PEM of the RSA public
 * key, the classic algorithm-confusion forgery.
 */
#ifndef MGW_TEST_JOSE_VECTORS_H
#define MGW_TEST_JOSE_VECTORS_H

// clang-format off
static const char RFC_A1[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODA"
    "sDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_w"
    "W1gFWFOEjXk";

static const char RFC_A1_KEY[] =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CA"
    "ow";

static const char RFC_A2_JWKS[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPdd"
    "xHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ"
    "47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg66"
    "5xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2eth"
    "FkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\",\"e\":\"AQAB\"}]}";

static const char RFC_A2[] =
    "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGF"
    "tcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu"
    "3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdi"
    "uB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--x"
    "i12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5A"
    "XLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

static const char RFC_A3_JWKS[] =
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\""
    ",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";

static const char RFC_A3[] =
    "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGF"
    "tcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw"
    "5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

static const char RFC_A5[] =
    "eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ.";

static const char RFC8037_JWKS[] =
    "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHU"
    "Ro\"}]}";

static const char RFC8037[] =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7"
    "-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

static const char JWKS[] =
    "{\"keys\":["
    "{\"kty\":\"RSA\",\"kid\":\"rsa1\",\"n\":\"k35602VrRBZmiDFs6YleYe6h15-LyyW3FDW9Nt1zKzBnSk-mg"
    "1oMvQatkcxOTVcMVESLAYShRurKTGNBzk4Qs7BByTAvNYwxk2EEt3RKykWSwcP5hYvSVlIFaQOJiCLJO"
    "kyiIkbHOiOW30WnnnPXJ3ph4cBBFiV8ekQt08pR8U7tWQFbPMQwQFik9Vlfx6WJW6qI_PpkfbPwHI0Pu"
    "mNufYlQrceGtB38f4B1pJZMj9FyyKG4706jVOUuc3i63mOihYZfGjN6hkwCkCU5J3o6DtL_evxovzGAB"
    "VyskM1N7E-3kEVV7An7fgrzkXAyDGrumUxFMiD0Txgf8n1Cg4NSPw\",\"e\":\"AQAB\",\"use\":\"sig\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec256\",\"x\":\"hWP8Utd-es1GIIDCWVXvwxzArKLjrgLmZmJ"
    "CHVzAQ2U\",\"y\":\"JnWpZCE8h6fNJ31RyMYOb7kYYtuYQBWrrf65agQ5OFY\",\"alg\":\"ES256\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"ec384\",\"x\":\"IfvTVMV0qLXg5xzXdMyGZGnLxlWQVAir0IE"
    "KmXT4xBLyEsY_XyJkOirBkH0hycn1\",\"y\":\"K7jU4pGEjbzp3w-32NylBb3crcsew2tpJWY1kcXMVfFh"
    "iLPMvbuFXf6JAABmR6xU\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-521\",\"kid\":\"ec521\",\"x\":\"AXvLD7EKEQZRRA2J8EAwAShGz8eraboeMRv"
    "pLMRVBjoREBwSA2LdpcsHJ8YqBaVMniWZP9IPOy5RIIEbxCz6nsX6\",\"y\":\"AJW_dPZ6BWmICEriWQ0k"
    "HPAyBgBVEUBVYP2ZzGvj32QExhU2yqd3kx4vSsu9aR8izAdL7GHw-wO2zfSbg90G4l_t\"},"
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed1\",\"x\":\"bKmvMl0qdROnNC4_xy3Bprxld42JlS0Tw7"
    "t-LAuaWfk\"}"
    "]}";

static const char RSA1024_JWK[] =
    "{\"kty\":\"RSA\",\"kid\":\"small\",\"n\":\"8gSI9JFzPNU3bVslvOE4RxKbZAHezXj6jxsQ6DWgsj3djkSGW8ET"
    "52ACWPHrWs05-tyrA1q8owBJ_IKuwptDsqDbTa65IadOWzu6bM7zygH2MirXJlVYcN-fx81MklV8u42Yyruo"
    "nfHGIRKq_MMfbRSHMZVy65sXvJ9zw38JN5M\",\"e\":\"AQAB\"}";

static const char TOK_RS256[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYTEiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2lkcC50Z"
    "XN0L3JlYWxtIiwiYXVkIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2M"
    "DAwMDAwMDAsImlhdCI6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.kROt0R4W"
    "g9P3sA8lMlKsqvgP2e5eK669INcUJjpVlzSXAjclV5Stu4g56BwMHTOer6mZkrS-7_2K9ZG1kIDJRBLlh4T4"
    "ZLBcdmgk71vzOrt_JovBiZ7FOwG6rnOfojFk1Q_0aBafpi3FasEgIbdQCtcLkkMCzQDf0WiCM4l6CWpWVKU9"
    "LR929tLnxp2vcOEnVZT5E7uvIo2RghnUfi2-zl4jqWPEdyksvuIVZhH9opQ4XUQNS-ePKH3Vuudl6RcUsiIi"
    "4liVO14tZx-UR6g6xAUvkQJOr1ifazstQu8DZoxHZJQmhTAmebTin5wFbiIHbHexZ7jiWruYCKOivLTjkg";

static const char TOK_RS384[] =
    "eyJhbGciOiJSUzM4NCIsImtpZCI6InJzYTEiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2lkcC50Z"
    "XN0L3JlYWxtIiwiYXVkIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2M"
    "DAwMDAwMDAsImlhdCI6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.fe6WpFAl"
    "0ggyfQ-ZsVWpJSw6EF3oHxxMa5Z6lPfwRr7TS-WwZ6c2gFDXuVlVr3jSb5BhIdFfl2RcDGUqC6JAn4mw_JBP"
    "cWzS2pKiT6kWZf8bW7m7vpNeKTEXV6JXz-vA9dh7IznbeA2V0uFJ9dJXZrRG0EBzB_AAoIaWwOMoKKvpAtWh"
    "REadxA552NJvcA6LZRgieYQ-bqPy7_QNTgXCEkJ8wdMywEeNqYdYp_dMgz3kFM_le4F2D5Z4Uo6R9DR4ia8o"
    "-3UOMShqp4a0t8CqSpmGc-Ir77BhSdD3f85maSQI2NfSaLGeaFrTmcSzun0T_oQVBbmNSMn4JbkOThEhsg";

static const char TOK_RS512[] =
    "eyJhbGciOiJSUzUxMiIsImtpZCI6InJzYTEiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2lkcC50Z"
    "XN0L3JlYWxtIiwiYXVkIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2M"
    "DAwMDAwMDAsImlhdCI6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.kX4TFXg-"
    "I5D-i8yb7qxPBSjCHaHgrSYk38vuYwCLfvMSwTXmYzNCtmzkLC-5SqEAXAPFKUygiiWRtXZw39GH4XZoElnO"
    "lR4jrcW2r746ULe8GrCMhIMl7f7eSdKsZ5oTIOoA_VOIjJbQtebhcRcgbgk8J6_Jx4HYRgNBQhYdMoZSkpWS"
    "JsThOVGW3EerlJoZg2NrRCtFYk34HpvSPPoX67qCVfoOL9Aon2_GwzExfErV6nEg2pHiUVuDrWp6SAaTRte_"
    "ca4a8gk_cCaZ5eVCV2kaJMbeGSlb743-RZjv8kjNdHUS-W3Y-tFSE5kWZ6SXuW1EYf5kKo_thfuFQKxSKg";

static const char TOK_PS256[] =
    "eyJhbGciOiJQUzI1NiIsImtpZCI6InJzYTEiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2lkcC50Z"
    "XN0L3JlYWxtIiwiYXVkIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2M"
    "DAwMDAwMDAsImlhdCI6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.XO3QyZwn"
    "gbajQmR6vHlxodyR4y5CPSRfBE7YQCHaHllm4OkRQW1moSe77xPgmR68Cx-2oBg7yloInLQaUW0NN0pCQk5b"
    "pYEB1qNrFV90IW7ZwdyWpXdevXS8ILBRXL58zlO031_F0Mq1OuQvZajuVnbUTe6cYXQV0COjiteoxa8DHTM-"
    "Mz385cq7kegqMkHpUWqY1UTekzTXgHf1eEjiykKUYwCqiLf7wX1D5RGY5OkASD5-MvseR_aGvOtQ_D23dWvP"
    "27JiVBzF8od7D513JDmt-Ygkf6QLDRrcV0oUxD2KoIWT6sv-EHHFKguUtNI4wQnTfzN0Gqbib3tTtjCzqg";

static const char TOK_PS384[] =
    "eyJhbGciOiJQUzM4NCIsImtpZCI6InJzYTEiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2lkcC50Z"
    "XN0L3JlYWxtIiwiYXVkIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2M"
    "DAwMDAwMDAsImlhdCI6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.UT5MQY04"
    "Hid4ymt_qnjuIdzFY7cw6HeC3r7bonNMIUNSnOo-ijQ2gLAKVGcQx_w0ZKPbYinfg_7p2128CFN0C2S_NSgu"
    "UCabuKwOVVkGsNSYslKGI8B1CGDd1FNwQe3lNY2pFAJUySsFzghg94Upz5B5xCV40BvhvB0H5ZUwDZ7CU-V6"
    "FJA91BwYX9DZZ14ggahgsIdPYtcqkOMUO4WCopRHBpQOEpfN8OZ2XhoJ4o3vMzDFLy44TdoJInMtXH5LG051"
    "em4VmwB85WN5SmazK9matXTU98_WEY-9alwn5Z9FD9wUKQ_oEZ3FrzEwm_hZGH32hhS74D86VN115ttqDg";

static const char TOK_PS512[] =
    "eyJhbGciOiJQUzUxMiIsImtpZCI6InJzYTEiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2lkcC50Z"
    "XN0L3JlYWxtIiwiYXVkIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2M"
    "DAwMDAwMDAsImlhdCI6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.il6xEkxg"
    "XGwQ82ZXLUOF9oJAjgYSV8qpeTl59AqUoj_aXNC9MJlSQ4hnDRM21vZk824PYaelPbgS5LohLG8fQiPfV1e2"
    "mP6DdCmcC_T3E1WqJHyDiQdE6xUgqOYKIT_o-VX2nVGIH3-vnsBZRv5INkR1mP-XGL9wWGXHhSxlsFddiY9Y"
    "QFreCK_k-hH9-2OnTJSGyW8ajIeTDyXQdWPvxmUEdj32Ip6DuFJ5IWT56iKWVfsSUnuPG3F9pM0afaMjYH6X"
    "Nj2_wJs6jIpves34y8mpw2KFN1rBvik0lxn4gbknnXgSZMqk0KcLm7_XNPIyDVmiJv0-6-O93tcEqt_TGw";

static const char TOK_ES256[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjMjU2IiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2lkcC50"
    "ZXN0L3JlYWxtIiwiYXVkIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2"
    "MDAwMDAwMDAsImlhdCI6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.sDIGxxh"
    "kyppjnXUGNbdZuGSANQOdb_56zKQsimMpr3MU_7-HZ1Yuk2Hw9EZjmjUHRG_J7Gdkbk3Zba6DywIMUA";

static const char TOK_ES384[] =
    "eyJhbGciOiJFUzM4NCIsImtpZCI6ImVjMzg0IiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2lkcC50"
    "ZXN0L3JlYWxtIiwiYXVkIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2"
    "MDAwMDAwMDAsImlhdCI6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.M4gaWW4"
    "dbRtC7zYtmDiJaz9Kt8yMifB1ek8cuJ0Xqbh5Xd2QLY7YY2jFVv3kPhtyos5JfgPHEe3EXZyiD5W7aYhWCyq"
    "83j6_FhXyTR-gzh6hQcCArbWHW0nzvCk8PQdZ";

static const char TOK_ES512[] =
    "eyJhbGciOiJFUzUxMiIsImtpZCI6ImVjNTIxIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2lkcC50"
    "ZXN0L3JlYWxtIiwiYXVkIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2"
    "MDAwMDAwMDAsImlhdCI6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.APAjqe6"
    "wuKIJ8pBpBBPNAzVtB0R7hR0se00F4xF8NXfibMugJlAdAGpInEyGVO8f3MT3UiNrdPS8W4sbXbebiGuwAJL"
    "-nsqLXWdvNJHTe8QvxjfqJ3D9FMrSo8OX8XyPdkb4qioIKmPvHTluBpni5IlCHsik74YYR_3e7hVCEhWwUQ8"
    "D";

static const char TOK_EDDSA[] =
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkMSIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lkcC50ZXN"
    "0L3JlYWxtIiwiYXVkIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2MDA"
    "wMDAwMDAsImlhdCI6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.-vio8PBkm5"
    "-ZZl263wAla6nsOSLl4RUtdPS9mbY78EL6eCy2kgU73YRh8scmtBDEImjGGvjNbvG81uQVW8fsAw";

static const char TOK_HS256[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lkcC50ZXN0L3JlYWxtIiwiYXV"
    "kIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2MDAwMDAwMDAsImlhdCI"
    "6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.nyd9qmuvvweS8pFYKcEZqQ5VOH"
    "eB1RZ0ry8Gyzs0kJ4";

static const char TOK_HS384[] =
    "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lkcC50ZXN0L3JlYWxtIiwiYXV"
    "kIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2MDAwMDAwMDAsImlhdCI"
    "6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.IGqyzM6QisENzYD3lbBCwXRayY"
    "VMXBv_hnQ-RvLxgSuD03ZGJu1EjenzO4_nmN1t";

static const char TOK_HS512[] =
    "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lkcC50ZXN0L3JlYWxtIiwiYXV"
    "kIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2MDAwMDAwMDAsImlhdCI"
    "6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.OFCXTetSP1XYz66UFYP2cg-695"
    "uaz-BZf6xORt1K5mWzeQ_mBEx9xMGw5kkLusIXn2eQOXbRKABF71miwaW0Iw";

static const char TOK_RS256_NOKID[] =
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lkcC50ZXN0L3JlYWxtIiwiYXV"
    "kIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2MDAwMDAwMDAsImlhdCI"
    "6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.NVcrP2QDfbDYUtwZgz-GXzkRrt"
    "H1B3O5cViOVExHdGQWP_ubj__Ws2TF9DnXye0hXLWOGi-yupyiqsI3ieyzH-berrKCk-qn3evCzXrS0o4XCM"
    "8hoEM40xgb6Ek81L3Odc3g95-DVfdgq5WH2MrG9t5iuJbliDZc1P_m39mvJ8YfqkCW7rof3hos4-OSs4XfJ8"
    "OozH7kDTZG4hmBHSQap2Jr952qynVXh9m6kyJ6SokZkgU6odG1uqAEn7lbFRgpA8hpCp5rmeg6IrW29CDYyT"
    "XZmswidseXJHHk327h2RqOFThVR4GomqNjzj1VdwrghkpV6ABX6MFMpYsGgJPzTw";

static const char TOK_CONFUSION[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InJzYTEifQ.eyJpc3MiOiJodHRwczovL2lkcC50Z"
    "XN0L3JlYWxtIiwiYXVkIjoicGV0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2M"
    "DAwMDAwMDAsImlhdCI6MTYwMDAwMDAwMCwic2NvcGUiOiJwZXRzOnJlYWQgcGV0czp3cml0ZSJ9.-kXeFWay"
    "ojauubWN7uVsLKY4_gTK4qukUz-XJ5HMwdc";

static const char PEM[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAk35602VrRBZmiDFs6Yle\n"
    "Ye6h15+LyyW3FDW9Nt1zKzBnSk+mg1oMvQatkcxOTVcMVESLAYShRurKTGNBzk4Q\n"
    "s7BByTAvNYwxk2EEt3RKykWSwcP5hYvSVlIFaQOJiCLJOkyiIkbHOiOW30WnnnPX\n"
    "J3ph4cBBFiV8ekQt08pR8U7tWQFbPMQwQFik9Vlfx6WJW6qI/PpkfbPwHI0PumNu\n"
    "fYlQrceGtB38f4B1pJZMj9FyyKG4706jVOUuc3i63mOihYZfGjN6hkwCkCU5J3o6\n"
    "DtL/evxovzGABVyskM1N7E+3kEVV7An7fgrzkXAyDGrumUxFMiD0Txgf8n1Cg4NS\n"
    "PwIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

/* The HS256/384/512 tokens' secrets. */
static const char SECRET256[] = "0123456789abcdef0123456789abcdef";
static const char SECRET384[] = "0123456789abcdef0123456789abcdef0123456789abcdef";
static const char SECRET512[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
// clang-format on

#endif
