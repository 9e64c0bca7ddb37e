-- The PostgreSQL schema as the migrations create it (DDL_V1 and DDL_V2 of src/store/postgres.rs;
-- a unit test there keeps this copy identical), for benches/pgbench/decompose.sh.
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
