\set u random(1, 3000)
SELECT outcome FROM mfa_settle_attempt('user' || :u, 'totp', 'totp', decode(md5('t' || :u), 'hex'), NULL, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, 5, 0, NULL, NULL, NULL, 0, NULL, NULL, NULL, 0, NULL, NULL, NULL, sha256(decode(md5('t' || :u), 'hex')), NULL);
