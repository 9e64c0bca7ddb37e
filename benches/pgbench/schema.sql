CREATE TABLE mfa_devices (
        id BYTEA PRIMARY KEY,
        user_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        last_used_at BIGINT,
        confirmed BOOLEAN NOT NULL,
        totp_algorithm TEXT,
        totp_digits BIGINT,
        totp_period BIGINT,
        totp_secret BYTEA,
        totp_last_step BIGINT,
        codes_salt BYTEA,
        codes_length BIGINT,
        credential_id BYTEA UNIQUE,
        user_handle BYTEA,
        credential BYTEA,
        sign_count BIGINT,
        backup_eligible BOOLEAN,
        backup_state BOOLEAN,
        discoverable BOOLEAN,
        user_verified BOOLEAN
    );
CREATE INDEX mfa_devices_by_user ON mfa_devices (user_id, created_at, id);
CREATE TABLE mfa_backup_codes (
        device_id BYTEA NOT NULL REFERENCES mfa_devices (id) ON DELETE CASCADE,
        slot BIGINT NOT NULL,
        hash BYTEA NOT NULL,
        used BOOLEAN NOT NULL,
        PRIMARY KEY (device_id, slot)
    );
CREATE TABLE mfa_throttles (
        user_id TEXT NOT NULL,
        factor TEXT NOT NULL,
        failures BIGINT NOT NULL,
        last_failure_at BIGINT,
        PRIMARY KEY (user_id, factor)
    );
CREATE TABLE mfa_ceremonies (
        id BYTEA PRIMARY KEY,
        user_id TEXT,
        kind TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        state BYTEA NOT NULL
    );
CREATE INDEX mfa_ceremonies_by_expiry ON mfa_ceremonies (expires_at);
CREATE TABLE mfa_trusted_devices (
        id BYTEA PRIMARY KEY,
        user_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        hash BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        last_used_at BIGINT
    );
CREATE INDEX mfa_trusted_devices_by_user ON mfa_trusted_devices (user_id, created_at, id);
ALTER TABLE mfa_throttles ADD COLUMN budget_until BIGINT;
ALTER TABLE mfa_devices ADD COLUMN codes_key_id TEXT;
DELETE FROM mfa_trusted_devices;
CREATE OR REPLACE FUNCTION mfa_settle_attempt(
        p_user TEXT, p_factor TEXT, p_kind TEXT, p_device BYTEA, p_slot BIGINT, p_step BIGINT, p_now BIGINT,
        a_failures BIGINT, a_last BIGINT, a_budget BIGINT,
        h_failures BIGINT, h_last BIGINT, h_budget BIGINT,
        m_failures BIGINT, m_last BIGINT, m_budget BIGINT
    ) RETURNS TABLE (outcome TEXT, failures BIGINT, last_failure_at BIGINT, budget_until BIGINT)
    LANGUAGE plpgsql AS $fn$
    DECLARE
        cur RECORD;
        stored BOOLEAN;
        hit BOOLEAN := FALSE;
        clear_admitted BOOLEAN := a_failures = 0 AND a_last IS NULL AND a_budget IS NULL;
        clear_on_hit BOOLEAN := h_failures = 0 AND h_last IS NULL AND h_budget IS NULL;
    BEGIN
        -- The counter row, locked: the comparison below and the writes after it are one atomic
        -- step. A clear counter has no row (a success deletes it), so most users have none.
        SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
            WHERE t.user_id = p_user AND t.factor = p_factor FOR UPDATE;
        stored := FOUND;
        IF NOT stored THEN
            -- No row to lock: settlements of a clear counter take turns on a transaction lock
            -- of their own, hit or miss, and look again once they have it (a row another
            -- request created meanwhile is committed by then). Without it a hit could be
            -- accepted after failures that were charged while it ran.
            PERFORM pg_advisory_xact_lock(hashtextextended('multifactor/counter/' || p_factor || '/' || p_user, 0));
            SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_factor FOR UPDATE;
            stored := FOUND;
        END IF;
        IF NOT stored AND NOT (clear_admitted AND clear_on_hit) THEN
            -- Anything but a clear counter that a success leaves clear: lock a row to write.
            INSERT INTO mfa_throttles AS t (user_id, factor, failures, last_failure_at, budget_until)
                VALUES (p_user, p_factor, 0, NULL, NULL) ON CONFLICT (user_id, factor) DO NOTHING;
            SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_factor FOR UPDATE;
            IF NOT FOUND THEN
                -- Created and cleared again meanwhile: the caller settles again.
                RETURN QUERY SELECT 'moved'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
            stored := TRUE;
        END IF;
        IF stored AND (cur.failures IS DISTINCT FROM a_failures OR cur.last_failure_at IS DISTINCT FROM a_last
            OR cur.budget_until IS DISTINCT FROM a_budget) THEN
            RETURN QUERY SELECT 'moved'::TEXT, cur.failures, cur.last_failure_at, cur.budget_until;
            RETURN;
        END IF;
        -- The hit, with the same statements for a miss (whose device is null and matches nothing).
        IF p_kind = 'backup_codes' THEN
            -- The set's row first, as deleting or replacing a set does (its codes go by cascade):
            -- the same lock order, so the two never wait for each other in a circle.
            PERFORM 1 FROM mfa_devices d WHERE d.id = p_device AND d.user_id = p_user AND d.kind = p_kind
                FOR NO KEY UPDATE;
            UPDATE mfa_backup_codes c SET used = TRUE WHERE c.device_id = p_device AND c.slot = p_slot
                AND c.used = FALSE AND EXISTS (SELECT 1 FROM mfa_devices d
                WHERE d.id = p_device AND d.user_id = p_user AND d.kind = p_kind);
            hit := FOUND;
            UPDATE mfa_devices d SET last_used_at = p_now WHERE hit AND d.id = p_device;
        ELSE
            UPDATE mfa_devices d SET totp_last_step = p_step, confirmed = TRUE, last_used_at = p_now
                WHERE d.id = p_device AND d.user_id = p_user AND d.kind = p_kind AND p_step IS NOT NULL
                AND (d.totp_last_step IS NULL OR d.totp_last_step < p_step);
            hit := FOUND;
        END IF;
        IF hit THEN
            IF NOT stored THEN
                -- A clear counter that stays clear: nothing to write. (A failure counted
                -- meanwhile by another request was counted after this success.)
                NULL;
            ELSIF clear_on_hit THEN
                DELETE FROM mfa_throttles t WHERE t.user_id = p_user AND t.factor = p_factor;
            ELSIF h_failures IS DISTINCT FROM cur.failures OR h_last IS DISTINCT FROM cur.last_failure_at
                OR h_budget IS DISTINCT FROM cur.budget_until THEN
                UPDATE mfa_throttles t SET failures = h_failures, last_failure_at = h_last, budget_until = h_budget
                    WHERE t.user_id = p_user AND t.factor = p_factor;
            END IF;
            RETURN QUERY SELECT 'accepted'::TEXT, h_failures, h_last, h_budget;
        ELSIF NOT stored THEN
            -- A miss against a clear counter: the charge creates the row, unless a concurrent
            -- request created it first (then the counter moved).
            INSERT INTO mfa_throttles AS t (user_id, factor, failures, last_failure_at, budget_until)
                VALUES (p_user, p_factor, m_failures, m_last, m_budget) ON CONFLICT (user_id, factor) DO NOTHING;
            IF FOUND THEN
                RETURN QUERY SELECT 'charged'::TEXT, m_failures, m_last, m_budget;
                RETURN;
            END IF;
            SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_factor;
            IF FOUND THEN
                RETURN QUERY SELECT 'moved'::TEXT, cur.failures, cur.last_failure_at, cur.budget_until;
            ELSE
                -- Created and cleared again meanwhile: clear, so it moved and came back (the
                -- caller settles again).
                RETURN QUERY SELECT 'moved'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT;
            END IF;
        ELSE
            UPDATE mfa_throttles t SET failures = m_failures, last_failure_at = m_last, budget_until = m_budget
                WHERE t.user_id = p_user AND t.factor = p_factor;
            RETURN QUERY SELECT 'charged'::TEXT, m_failures, m_last, m_budget;
        END IF;
    END
    $fn$;
DO $guard$ BEGIN
        IF EXISTS (SELECT 1 FROM mfa_backup_codes GROUP BY device_id
            HAVING MIN(slot) <> 0 OR MAX(slot) <> COUNT(*) - 1 OR MAX(slot) > 62
                OR MAX(length(hash)) <> 32 OR MIN(length(hash)) <> 32) THEN
            RAISE EXCEPTION 'schema v4: a backup-code set whose slots are not 0..n-1 with 32-byte hashes cannot be packed';
        END IF;
    END $guard$;
ALTER TABLE mfa_devices ADD COLUMN codes_hashes BYTEA;
ALTER TABLE mfa_devices ADD COLUMN codes_unused BIGINT;
UPDATE mfa_devices d SET
        codes_hashes = coalesce((SELECT string_agg(c.hash, ''::bytea ORDER BY c.slot) FROM mfa_backup_codes c
            WHERE c.device_id = d.id), ''::bytea),
        codes_unused = coalesce((SELECT bit_or(CASE WHEN c.used THEN 0::bigint ELSE 1::bigint << c.slot::int END)
            FROM mfa_backup_codes c WHERE c.device_id = d.id), 0)
        WHERE d.kind = 'backup_codes';
DROP TABLE mfa_backup_codes;
DROP FUNCTION IF EXISTS mfa_settle_attempt(TEXT, TEXT, TEXT, BYTEA, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT);
CREATE OR REPLACE FUNCTION mfa_settle_attempt(
        p_user TEXT, p_factor TEXT, p_kind TEXT, p_device BYTEA, p_mask BIGINT, p_step BIGINT, p_now BIGINT,
        a_failures BIGINT, a_last BIGINT, a_budget BIGINT,
        h_failures BIGINT, h_last BIGINT, h_budget BIGINT,
        m_failures BIGINT, m_last BIGINT, m_budget BIGINT, p_devices BYTEA
    ) RETURNS TABLE (outcome TEXT, failures BIGINT, last_failure_at BIGINT, budget_until BIGINT)
    LANGUAGE plpgsql AS $fn$
    DECLARE
        cur RECORD;
        stored BOOLEAN;
        methods BYTEA;
        target TID;
        hit BOOLEAN := FALSE;
        clear_admitted BOOLEAN := a_failures = 0 AND a_last IS NULL AND a_budget IS NULL;
        clear_on_hit BOOLEAN := h_failures = 0 AND h_last IS NULL AND h_budget IS NULL;
    BEGIN
        -- The counter row, locked: the comparison below and the writes after it are one atomic
        -- step. A clear counter has no row (a success deletes it), so most users have none.
        SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
            WHERE t.user_id = p_user AND t.factor = p_factor FOR UPDATE;
        stored := FOUND;
        IF NOT stored THEN
            -- No row to lock: settlements of a clear counter take turns on a transaction lock
            -- of their own, hit or miss, and look again once they have it (a row another
            -- request created meanwhile is committed by then). Without it a hit could be
            -- accepted after failures that were charged while it ran.
            PERFORM pg_advisory_xact_lock(hashtextextended('multifactor/counter/' || p_factor || '/' || p_user, 0));
            SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_factor FOR UPDATE;
            stored := FOUND;
        END IF;
        IF NOT stored AND NOT (clear_admitted AND clear_on_hit) THEN
            -- Anything but a clear counter that a success leaves clear: lock a row to write.
            INSERT INTO mfa_throttles AS t (user_id, factor, failures, last_failure_at, budget_until)
                VALUES (p_user, p_factor, 0, NULL, NULL) ON CONFLICT (user_id, factor) DO NOTHING;
            SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_factor FOR UPDATE;
            IF NOT FOUND THEN
                -- Created and cleared again meanwhile: the caller settles again.
                RETURN QUERY SELECT 'moved'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
            stored := TRUE;
        END IF;
        IF stored AND (cur.failures IS DISTINCT FROM a_failures OR cur.last_failure_at IS DISTINCT FROM a_last
            OR cur.budget_until IS DISTINCT FROM a_budget) THEN
            RETURN QUERY SELECT 'moved'::TEXT, cur.failures, cur.last_failure_at, cur.budget_until;
            RETURN;
        END IF;
        IF p_devices IS NOT NULL THEN
            -- The methods the code was evaluated against must still be the user's (the digest
            -- of DevicesDigest::of, computed here the same way), hit or miss. The same scan of
            -- the user's rows finds the hit's row, so the hit below needs no second index
            -- descent (a miss has no device: its target is null and matches nothing).
            SELECT sha256(coalesce(string_agg(d.id || CASE WHEN d.kind = 'backup_codes'
                THEN int8send(d.codes_unused) ELSE ''::bytea END, ''::bytea ORDER BY d.created_at, d.id)
                FILTER (WHERE d.confirmed), ''::bytea)),
                (array_agg(d.ctid) FILTER (WHERE d.id = p_device))[1]
                INTO methods, target FROM mfa_devices d WHERE d.user_id = p_user AND d.kind = p_kind;
            IF methods IS DISTINCT FROM p_devices THEN
                RETURN QUERY SELECT 'stale'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
        END IF;
        -- The hit, with the same statements for a miss (whose device is null and matches nothing).
        -- First by the row the digest scan found, then (if that row moved meanwhile, or there was
        -- no scan) by id: the same statements for every attempt that is not accepted.
        IF p_kind = 'backup_codes' THEN
            -- The set's codes are packed in its row: spend the code's bit if it is still set.
            UPDATE mfa_devices d SET codes_unused = d.codes_unused & ~p_mask, last_used_at = p_now
                WHERE d.ctid = target AND d.id = p_device AND d.user_id = p_user AND d.kind = p_kind
                AND (d.codes_unused & p_mask) <> 0;
            hit := FOUND;
            IF NOT hit THEN
                UPDATE mfa_devices d SET codes_unused = d.codes_unused & ~p_mask, last_used_at = p_now
                    WHERE d.id = p_device AND d.user_id = p_user AND d.kind = p_kind AND (d.codes_unused & p_mask) <> 0;
                hit := FOUND;
            END IF;
        ELSE
            UPDATE mfa_devices d SET totp_last_step = p_step, confirmed = TRUE, last_used_at = p_now
                WHERE d.ctid = target AND d.id = p_device AND d.user_id = p_user AND d.kind = p_kind
                AND p_step IS NOT NULL AND (d.totp_last_step IS NULL OR d.totp_last_step < p_step);
            hit := FOUND;
            IF NOT hit THEN
                UPDATE mfa_devices d SET totp_last_step = p_step, confirmed = TRUE, last_used_at = p_now
                    WHERE d.id = p_device AND d.user_id = p_user AND d.kind = p_kind AND p_step IS NOT NULL
                    AND (d.totp_last_step IS NULL OR d.totp_last_step < p_step);
                hit := FOUND;
            END IF;
        END IF;
        IF hit THEN
            IF NOT stored THEN
                -- A clear counter that stays clear: nothing to write. (A failure counted
                -- meanwhile by another request was counted after this success.)
                NULL;
            ELSIF clear_on_hit THEN
                DELETE FROM mfa_throttles t WHERE t.user_id = p_user AND t.factor = p_factor;
            ELSIF h_failures IS DISTINCT FROM cur.failures OR h_last IS DISTINCT FROM cur.last_failure_at
                OR h_budget IS DISTINCT FROM cur.budget_until THEN
                UPDATE mfa_throttles t SET failures = h_failures, last_failure_at = h_last, budget_until = h_budget
                    WHERE t.user_id = p_user AND t.factor = p_factor;
            END IF;
            RETURN QUERY SELECT 'accepted'::TEXT, h_failures, h_last, h_budget;
        ELSIF NOT stored THEN
            -- A miss against a clear counter: the charge creates the row, unless a concurrent
            -- request created it first (then the counter moved).
            INSERT INTO mfa_throttles AS t (user_id, factor, failures, last_failure_at, budget_until)
                VALUES (p_user, p_factor, m_failures, m_last, m_budget) ON CONFLICT (user_id, factor) DO NOTHING;
            IF FOUND THEN
                RETURN QUERY SELECT 'charged'::TEXT, m_failures, m_last, m_budget;
                RETURN;
            END IF;
            SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_factor;
            IF FOUND THEN
                RETURN QUERY SELECT 'moved'::TEXT, cur.failures, cur.last_failure_at, cur.budget_until;
            ELSE
                -- Created and cleared again meanwhile: clear, so it moved and came back (the
                -- caller settles again).
                RETURN QUERY SELECT 'moved'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT;
            END IF;
        ELSE
            UPDATE mfa_throttles t SET failures = m_failures, last_failure_at = m_last, budget_until = m_budget
                WHERE t.user_id = p_user AND t.factor = p_factor;
            RETURN QUERY SELECT 'charged'::TEXT, m_failures, m_last, m_budget;
        END IF;
    END
    $fn$;
ALTER TABLE mfa_throttles ADD COLUMN last_miss BIGINT;
ALTER TABLE mfa_trusted_devices ADD COLUMN skips_second_factor BOOLEAN NOT NULL DEFAULT TRUE;
CREATE TABLE mfa_keys (key_id TEXT PRIMARY KEY, check_value BYTEA NOT NULL);
DROP FUNCTION IF EXISTS mfa_settle_attempt(TEXT, TEXT, TEXT, BYTEA, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BYTEA);
CREATE OR REPLACE FUNCTION mfa_settle_attempt(
        p_user TEXT, p_counter TEXT, p_kind TEXT, p_device BYTEA, p_mask BIGINT, p_step BIGINT, p_now BIGINT,
        a_failures BIGINT, a_last BIGINT, a_budget BIGINT, a_miss BIGINT,
        h_failures BIGINT, h_last BIGINT, h_budget BIGINT, h_miss BIGINT,
        m_failures BIGINT, m_last BIGINT, m_budget BIGINT, m_miss BIGINT, p_devices BYTEA, p_browser BYTEA
    ) RETURNS TABLE (outcome TEXT, failures BIGINT, last_failure_at BIGINT, budget_until BIGINT, last_miss BIGINT)
    LANGUAGE plpgsql AS $fn$
    DECLARE
        cur RECORD;
        stored BOOLEAN;
        methods BYTEA;
        target TID;
        hit BOOLEAN := FALSE;
        clear_admitted BOOLEAN := a_failures = 0 AND a_last IS NULL AND a_budget IS NULL AND a_miss IS NULL;
        clear_on_hit BOOLEAN := h_failures = 0 AND h_last IS NULL AND h_budget IS NULL AND h_miss IS NULL;
    BEGIN
        IF p_browser IS NOT NULL THEN
            -- A known browser's own counter counts only while the user still has the browser
            -- (revoked, replaced or expired: the caller reads again and finds it unknown).
            -- Deleting the record takes its key-share lock away first, then deletes the counter.
            PERFORM 1 FROM mfa_trusted_devices b WHERE b.id = p_browser AND b.user_id = p_user
                AND b.expires_at > p_now FOR KEY SHARE;
            IF NOT FOUND THEN
                RETURN QUERY SELECT 'stale'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
        END IF;
        -- The counter row, locked: the comparison below and the writes after it are one atomic
        -- step. A clear counter has no row (a success deletes it), so most users have none.
        SELECT t.failures, t.last_failure_at, t.budget_until, t.last_miss INTO cur FROM mfa_throttles t
            WHERE t.user_id = p_user AND t.factor = p_counter FOR UPDATE;
        stored := FOUND;
        IF NOT stored THEN
            -- No row to lock: settlements of a clear counter take turns on a transaction lock
            -- of their own, hit or miss, and look again once they have it.
            PERFORM pg_advisory_xact_lock(hashtextextended('multifactor/counter/' || p_counter || '/' || p_user, 0));
            SELECT t.failures, t.last_failure_at, t.budget_until, t.last_miss INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_counter FOR UPDATE;
            stored := FOUND;
        END IF;
        IF NOT stored AND NOT (clear_admitted AND clear_on_hit) THEN
            -- Anything but a clear counter that a success leaves clear: lock a row to write.
            INSERT INTO mfa_throttles AS t (user_id, factor, failures, last_failure_at, budget_until, last_miss)
                VALUES (p_user, p_counter, 0, NULL, NULL, NULL) ON CONFLICT (user_id, factor) DO NOTHING;
            SELECT t.failures, t.last_failure_at, t.budget_until, t.last_miss INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_counter FOR UPDATE;
            IF NOT FOUND THEN
                RETURN QUERY SELECT 'moved'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
            stored := TRUE;
        END IF;
        IF stored AND (cur.failures IS DISTINCT FROM a_failures OR cur.last_failure_at IS DISTINCT FROM a_last
            OR cur.budget_until IS DISTINCT FROM a_budget OR cur.last_miss IS DISTINCT FROM a_miss) THEN
            RETURN QUERY SELECT 'moved'::TEXT, cur.failures, cur.last_failure_at, cur.budget_until, cur.last_miss;
            RETURN;
        END IF;
        IF p_devices IS NOT NULL THEN
            -- The devices the code was evaluated against must still be the user's (the digest
            -- of DevicesDigest::of, computed here the same way), hit or miss; the same scan
            -- finds the hit's row.
            SELECT sha256(coalesce(string_agg(d.id || CASE WHEN d.kind = 'backup_codes'
                THEN int8send(d.codes_unused) ELSE ''::bytea END, ''::bytea ORDER BY d.created_at, d.id)
                FILTER (WHERE d.confirmed), ''::bytea)),
                (array_agg(d.ctid) FILTER (WHERE d.id = p_device))[1]
                INTO methods, target FROM mfa_devices d WHERE d.user_id = p_user AND d.kind = p_kind;
            IF methods IS DISTINCT FROM p_devices THEN
                RETURN QUERY SELECT 'stale'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
        END IF;
        -- The hit, with the same statements for a miss (whose device is null and matches nothing).
        IF p_kind = 'backup_codes' THEN
            UPDATE mfa_devices d SET codes_unused = d.codes_unused & ~p_mask, last_used_at = p_now
                WHERE d.ctid = target AND d.id = p_device AND d.user_id = p_user AND d.kind = p_kind
                AND (d.codes_unused & p_mask) <> 0;
            hit := FOUND;
            IF NOT hit THEN
                UPDATE mfa_devices d SET codes_unused = d.codes_unused & ~p_mask, last_used_at = p_now
                    WHERE d.id = p_device AND d.user_id = p_user AND d.kind = p_kind AND (d.codes_unused & p_mask) <> 0;
                hit := FOUND;
            END IF;
        ELSE
            UPDATE mfa_devices d SET totp_last_step = p_step, confirmed = TRUE, last_used_at = p_now
                WHERE d.ctid = target AND d.id = p_device AND d.user_id = p_user AND d.kind = p_kind
                AND p_step IS NOT NULL AND (d.totp_last_step IS NULL OR d.totp_last_step < p_step);
            hit := FOUND;
            IF NOT hit THEN
                UPDATE mfa_devices d SET totp_last_step = p_step, confirmed = TRUE, last_used_at = p_now
                    WHERE d.id = p_device AND d.user_id = p_user AND d.kind = p_kind AND p_step IS NOT NULL
                    AND (d.totp_last_step IS NULL OR d.totp_last_step < p_step);
                hit := FOUND;
            END IF;
        END IF;
        IF hit THEN
            IF NOT stored THEN
                NULL;
            ELSIF clear_on_hit THEN
                DELETE FROM mfa_throttles t WHERE t.user_id = p_user AND t.factor = p_counter;
            ELSIF h_failures IS DISTINCT FROM cur.failures OR h_last IS DISTINCT FROM cur.last_failure_at
                OR h_budget IS DISTINCT FROM cur.budget_until OR h_miss IS DISTINCT FROM cur.last_miss THEN
                UPDATE mfa_throttles t SET failures = h_failures, last_failure_at = h_last, budget_until = h_budget,
                    last_miss = h_miss WHERE t.user_id = p_user AND t.factor = p_counter;
            END IF;
            RETURN QUERY SELECT 'accepted'::TEXT, h_failures, h_last, h_budget, h_miss;
        ELSIF NOT stored THEN
            -- A miss against a clear counter: the charge creates the row, unless a concurrent
            -- request created it first (then the counter moved).
            INSERT INTO mfa_throttles AS t (user_id, factor, failures, last_failure_at, budget_until, last_miss)
                VALUES (p_user, p_counter, m_failures, m_last, m_budget, m_miss) ON CONFLICT (user_id, factor) DO NOTHING;
            IF FOUND THEN
                RETURN QUERY SELECT 'charged'::TEXT, m_failures, m_last, m_budget, m_miss;
                RETURN;
            END IF;
            SELECT t.failures, t.last_failure_at, t.budget_until, t.last_miss INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_counter;
            IF FOUND THEN
                RETURN QUERY SELECT 'moved'::TEXT, cur.failures, cur.last_failure_at, cur.budget_until, cur.last_miss;
            ELSE
                RETURN QUERY SELECT 'moved'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
            END IF;
        ELSE
            UPDATE mfa_throttles t SET failures = m_failures, last_failure_at = m_last, budget_until = m_budget,
                last_miss = m_miss WHERE t.user_id = p_user AND t.factor = p_counter;
            RETURN QUERY SELECT 'charged'::TEXT, m_failures, m_last, m_budget, m_miss;
        END IF;
    END
    $fn$;
ALTER TABLE mfa_devices ADD COLUMN totp_fingerprint BYTEA;
CREATE UNIQUE INDEX mfa_devices_totp_fingerprint ON mfa_devices (user_id, totp_fingerprint);
CREATE TABLE mfa_enrollment_deadlines (user_id TEXT PRIMARY KEY NOT NULL, deadline BIGINT NOT NULL);
ALTER TABLE mfa_enrollment_deadlines ADD COLUMN skipped BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mfa_devices ADD COLUMN codes_prehash TEXT;
ALTER TABLE mfa_devices ADD COLUMN oob_channel TEXT;
ALTER TABLE mfa_devices ADD COLUMN oob_issued BYTEA;
DO $guard$ BEGIN
        IF EXISTS (SELECT 1 FROM mfa_devices WHERE kind = 'backup_codes' GROUP BY user_id HAVING COUNT(*) > 1) THEN
            RAISE EXCEPTION 'schema v11: a user with two backup-code sets cannot keep both';
        END IF;
    END $guard$;
CREATE TABLE mfa_user_state (
        codes_unused BIGINT,
        codes_used_at BIGINT,
        version INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        hit BOOLEAN NOT NULL DEFAULT FALSE,
        codes_set BYTEA,
        totp_counter BYTEA NOT NULL DEFAULT ''::BYTEA,
        codes_counter BYTEA NOT NULL DEFAULT ''::BYTEA,
        totp_marks BYTEA NOT NULL DEFAULT ''::BYTEA,
        PRIMARY KEY (user_id) WITH (fillfactor = 100)
    );
INSERT INTO mfa_user_state (user_id, version, totp_marks, codes_set, codes_unused, codes_used_at)
     SELECT d.user_id, 1,
        coalesce(string_agg(d.id
            || CASE WHEN d.totp_last_step IS NULL THEN int8send(0)
                WHEN d.totp_last_step = 9223372036854775807 THEN '\x8000000000000000'::BYTEA
                ELSE int8send(d.totp_last_step + 1) END
            || CASE WHEN d.last_used_at IS NULL OR NOT d.confirmed THEN int8send(0)
                WHEN d.last_used_at = 9223372036854775807 THEN '\x8000000000000000'::BYTEA
                ELSE int8send(d.last_used_at + 1) END, ''::BYTEA ORDER BY d.created_at, d.id)
            FILTER (WHERE d.kind = 'totp'), ''::BYTEA),
        (array_agg(d.id) FILTER (WHERE d.kind = 'backup_codes'))[1],
        (array_agg(d.codes_unused) FILTER (WHERE d.kind = 'backup_codes'))[1],
        (array_agg(d.last_used_at) FILTER (WHERE d.kind = 'backup_codes'))[1]
     FROM mfa_devices d GROUP BY d.user_id;
INSERT INTO mfa_user_state (user_id, version) SELECT DISTINCT t.user_id, 0 FROM mfa_throttles t
     WHERE t.factor IN ('totp', 'backup_codes') ON CONFLICT (user_id) DO NOTHING;
UPDATE mfa_user_state s SET totp_counter = CASE WHEN t.failures = 0 AND t.last_failure_at IS NULL AND t.budget_until IS NULL AND t.last_miss IS NULL THEN ''::BYTEA ELSE set_byte('\x00'::BYTEA, 0, CASE WHEN t.last_failure_at IS NULL THEN 0 ELSE 1 END | CASE WHEN t.budget_until IS NULL THEN 0 ELSE 2 END | CASE WHEN t.last_miss IS NULL THEN 0 ELSE 4 END) || int8send(t.failures::BIGINT) || int8send(coalesce(t.last_failure_at, 0)) || int8send(coalesce(t.budget_until, 0)) || int8send(coalesce(t.last_miss, 0)) END FROM mfa_throttles t WHERE t.user_id = s.user_id AND t.factor = 'totp';
UPDATE mfa_user_state s SET codes_counter = CASE WHEN t.failures = 0 AND t.last_failure_at IS NULL AND t.budget_until IS NULL AND t.last_miss IS NULL THEN ''::BYTEA ELSE set_byte('\x00'::BYTEA, 0, CASE WHEN t.last_failure_at IS NULL THEN 0 ELSE 1 END | CASE WHEN t.budget_until IS NULL THEN 0 ELSE 2 END | CASE WHEN t.last_miss IS NULL THEN 0 ELSE 4 END) || int8send(t.failures::BIGINT) || int8send(coalesce(t.last_failure_at, 0)) || int8send(coalesce(t.budget_until, 0)) || int8send(coalesce(t.last_miss, 0)) END FROM mfa_throttles t WHERE t.user_id = s.user_id AND t.factor = 'backup_codes';
DELETE FROM mfa_throttles WHERE factor IN ('totp', 'backup_codes');
UPDATE mfa_devices SET last_used_at = NULL WHERE kind <> 'webauthn';
ALTER TABLE mfa_devices DROP COLUMN totp_last_step, DROP COLUMN codes_unused;
DROP FUNCTION IF EXISTS mfa_settle_attempt(TEXT, TEXT, TEXT, BYTEA, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BYTEA, BYTEA);
DROP INDEX IF EXISTS mfa_devices_by_user;
CREATE INDEX mfa_devices_by_user ON mfa_devices (user_id);
DROP INDEX IF EXISTS mfa_devices_totp_fingerprint;
CREATE UNIQUE INDEX mfa_devices_totp_fingerprint ON mfa_devices (user_id, totp_fingerprint) WHERE totp_fingerprint IS NOT NULL;
ALTER TABLE mfa_devices DROP CONSTRAINT IF EXISTS mfa_devices_credential_id_key;
CREATE UNIQUE INDEX mfa_devices_credential_id ON mfa_devices (credential_id) WHERE credential_id IS NOT NULL;
ALTER TABLE mfa_trusted_devices RENAME TO mfa_browsers;
ALTER INDEX mfa_trusted_devices_by_user RENAME TO mfa_browsers_by_user;
ALTER INDEX mfa_trusted_devices_pkey RENAME TO mfa_browsers_pkey;
ALTER TABLE mfa_devices ADD COLUMN aaguid BYTEA;
UPDATE mfa_devices SET
         aaguid = decode(replace(substring(convert_from(credential, 'UTF8')
             FROM '"multifactor_aaguid":"([0-9A-Fa-f-]{36})"'), '-', ''), 'hex'),
         credential = convert_to(regexp_replace(convert_from(credential, 'UTF8'),
             ',"multifactor_aaguid":"[^"]*"|"multifactor_aaguid":"[^"]*",?', ''), 'UTF8')
     WHERE kind = 'webauthn' AND position('"multifactor_aaguid":"' IN convert_from(credential, 'UTF8')) > 0;
