<?php
/**
 * `PUT /wp-json/cartresq/v1/settings`: the app hands over its URL, the store key, the restore secret and
 * whether it has web push.
 *
 * The app calls it with the REST API keys the merchant granted at activation, so the route is put
 * under WooCommerce's API-key authentication and requires `manage_woocommerce`.
 *
 * @package CartResQ
 */

defined( 'ABSPATH' ) || exit;

/**
 * REST route for the app.
 */
class CartResQ_Rest {

	const NAMESPACE_V1 = 'cartresq/v1';

	/**
	 * Hooks.
	 */
	public static function init() {
		add_action( 'rest_api_init', array( __CLASS__, 'register' ) );
		add_filter( 'woocommerce_rest_is_request_to_rest_api', array( __CLASS__, 'use_woocommerce_auth' ) );
	}

	/**
	 * Let WooCommerce authenticate consumer key/secret on our namespace too.
	 *
	 * @param bool $is_api Whether WooCommerce already treats the request as its own.
	 * @return bool
	 */
	public static function use_woocommerce_auth( $is_api ) {
		if ( empty( $_SERVER['REQUEST_URI'] ) ) {
			return $is_api;
		}
		$uri = esc_url_raw( wp_unslash( $_SERVER['REQUEST_URI'] ) );
		return $is_api || false !== strpos( $uri, trailingslashit( rest_get_url_prefix() ) . self::NAMESPACE_V1 . '/' )
			|| false !== strpos( $uri, 'rest_route=%2F' . rawurlencode( self::NAMESPACE_V1 ) ) || false !== strpos( $uri, 'rest_route=/' . self::NAMESPACE_V1 );
	}

	/**
	 * Register the route.
	 */
	public static function register() {
		register_rest_route(
			self::NAMESPACE_V1,
			'/settings',
			array(
				'methods'             => array( 'PUT', 'POST' ),
				'callback'            => array( __CLASS__, 'save' ),
				'permission_callback' => static function () {
					return current_user_can( 'manage_woocommerce' );
				},
				'args'                => array(
					'app_url'        => array(
						'type'     => 'string',
						'format'   => 'uri',
						'required' => true,
					),
					'store_key'      => array(
						'type'     => 'string',
						'pattern'  => '^[A-Za-z0-9_-]{16,64}$',
						'required' => true,
					),
					'restore_secret' => array(
						'type'     => 'string',
						'pattern'  => '^[a-f0-9]{64}$',
						'required' => true,
					),
					'web_push'       => array(
						'type'    => 'boolean',
						'default' => false,
					),
				),
			)
		);
	}

	/**
	 * Store what the app sent.
	 *
	 * @param WP_REST_Request $request The request.
	 * @return WP_REST_Response
	 */
	public static function save( WP_REST_Request $request ) {
		CartResQ_Settings::update(
			array(
				'app_url'        => untrailingslashit( esc_url_raw( $request['app_url'] ) ),
				'store_key'      => sanitize_text_field( $request['store_key'] ),
				'restore_secret' => sanitize_text_field( $request['restore_secret'] ),
				'web_push'       => $request['web_push'] ? 'yes' : '',
				'connected_at'   => time(),
			)
		);
		return new WP_REST_Response( array( 'saved' => true ), 200 );
	}
}
