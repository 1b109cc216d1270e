//! `--via` path over real sockets: the real engine behind the real gateway,
//! and our client carrying the gateway session's `Origin` + `Cookie`.

use std::sync::Arc;
use std::time::Duration;

use dreamgate_client::ApiKey;
use dreamgate_engine::{EngineConfig, NoMedia};
use dreamgate_gateway::whip_policy::WhipPolicy;
use dreamgate_gateway::{GatewayConfig, Mode};
use dreamgate_whip::{ClientOptions, EncodingSource, GatewayError, GatewaySession, WhipClient, WhipError};
use tokio::net::TcpListener;

const KEY: &str = "daydream_live_TESTKEY_whip_0123456789";

async fn stack(engine: EngineConfig) -> (dreamgate_engine::EngineHandle, dreamgate_gateway::GatewayHandle) {
    let engine = dreamgate_engine::start(TcpListener::bind("127.0.0.1:0").await.unwrap(), engine).await;
    let policy = WhipPolicy::with_defaults(Vec::<String>::new(), true).unwrap();
    let cfg = GatewayConfig::new(Mode::Local, engine.base_url().parse().unwrap(), ApiKey::new(KEY), policy);
    let gateway = dreamgate_gateway::start(TcpListener::bind("127.0.0.1:0").await.unwrap(), cfg).await.unwrap();
    (engine, gateway)
}

fn quick(mut options: ClientOptions) -> ClientOptions {
    options.whip.ice_servers = Vec::new();
    options.whip.enable_trickle_ice = false;
    options.whip.backoff_initial = Duration::from_millis(50);
    options.whip.warmup_budget = Duration::from_millis(400);
    options
}

async fn publish(options: ClientOptions) -> Result<(), WhipError> {
    let client = WhipClient::new(options).unwrap();
    client.connect(Box::new(EncodingSource::test_pattern(64, 64, 30).unwrap())).await?;
    let result = tokio::time::timeout(Duration::from_secs(15), client.wait_connected()).await.expect("settles");
    client.shutdown().await;
    result
}

#[tokio::test]
async fn session_cookie_and_origin_carry_the_whole_flow() {
    // An engine without a media side answers WHIP with 503 "media not available".
    let no_media = EngineConfig { api_key: Some(KEY.into()), media: Some(Arc::new(NoMedia)), ..Default::default() };
    let (engine, gateway) = stack(no_media).await;
    let base = gateway.base_url().parse().unwrap();
    let owner = GatewaySession::open(base).await.unwrap();
    assert_eq!(owner.origin(), gateway.base_url());
    let body = serde_json::to_value(dreamgate_model::default_create_payload()).unwrap();
    let id = owner.create_stream(&body).await.unwrap();
    assert!(id.starts_with("str_"), "{id}");

    // The owner's WHIP POST passes the gateway's session and origin checks and
    // reaches the engine, whose 503 the gateway reports as 502 (upstream
    // failure): retried as warm-up, then reported with the real status.
    let err = publish(quick(owner.whip_options(&id).unwrap())).await.unwrap_err();
    assert_eq!(err.to_string(), "WHIP offer failed: 502");

    // Another session may not publish to it, nor delete it: 403 at once.
    let other = GatewaySession::open(gateway.base_url().parse().unwrap()).await.unwrap();
    let err = publish(quick(other.whip_options(&id).unwrap())).await.unwrap_err();
    assert_eq!(err.to_string(), "WHIP offer failed: 403");
    match other.delete_stream(&id).await {
        Err(GatewayError::Status { status: 403, message }) => {
            assert!(message.starts_with("Stream not owned by active session"), "{message}")
        }
        other => panic!("{other:?}"),
    }

    // The owner deletes it: gone from the engine too.
    owner.delete_stream(&id).await.unwrap();
    assert_eq!(engine.engine().streams().len(), 0);
    gateway.shutdown().await;
    engine.shutdown().await;
}
