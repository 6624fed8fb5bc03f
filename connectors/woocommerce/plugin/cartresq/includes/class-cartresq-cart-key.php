<?php
/**
 * One stable key per shopper cart, shared by the storefront beacons and the orders made from the cart.
 *
 * The Store API `Cart-Token` header is re-issued with a new timestamp on every response, so a hash of it
 * changed with every beacon. The key is random (not derived from the session's customer id, which is a
 * plain user id for logged-in shoppers and so guessable), kept in the WooCommerce session, handed to the
 * tracker in the Store API cart response (`extensions.cartresq.cart_key`), written on the order as
 * `_cartresq_cart_key` (draft and classic orders alike), and replaced after an order is placed so the
 * shopper's next cart is a new cart.
 *
 * @package CartResQ
 */

defined( 'ABSPATH' ) || exit;

/**
 * Cart key.
 */
class CartResQ_Cart_Key {

	const SESSION = 'cartresq_cart_key';
	const META    = '_cartresq_cart_key';

	/**
	 * Hooks.
	 */
	public static function init() {
		if ( did_action( 'woocommerce_blocks_loaded' ) ) {
			self::register_store_api_data();
		} else {
			add_action( 'woocommerce_blocks_loaded', array( __CLASS__, 'register_store_api_data' ) );
		}
		add_action( 'woocommerce_checkout_create_order', array( __CLASS__, 'stamp_order' ), 10, 1 );
		add_action( 'woocommerce_store_api_checkout_update_order_meta', array( __CLASS__, 'stamp_order' ), 10, 1 );
		add_action( 'woocommerce_checkout_order_processed', array( __CLASS__, 'forget' ), 99, 0 );
		add_action( 'woocommerce_store_api_checkout_order_processed', array( __CLASS__, 'forget' ), 99, 0 );
	}

	/**
	 * This session's key, made on first use; '' without a WooCommerce session.
	 *
	 * @return string
	 */
	public static function get() {
		if ( ! function_exists( 'WC' ) || ! WC()->session ) {
			return '';
		}
		$key = WC()->session->get( self::SESSION );
		if ( ! is_string( $key ) || ! preg_match( '/^wc-[0-9a-f]{40}$/', $key ) ) {
			$key = 'wc-' . bin2hex( random_bytes( 20 ) );
			WC()->session->set( self::SESSION, $key );
		}
		return $key;
	}

	/**
	 * Put the key on the order (HPOS and posts alike: order CRUD). Saved here when the order exists already:
	 * the Store API's GET /checkout makes the draft and fires this action without saving afterwards.
	 *
	 * @param WC_Order $order The order being created or updated at checkout.
	 */
	public static function stamp_order( $order ) {
		$key = self::get();
		if ( '' === $key || ! $order instanceof WC_Order || $order->get_meta( self::META ) === $key ) {
			return;
		}
		$order->update_meta_data( self::META, $key );
		if ( $order->get_id() && doing_action( 'woocommerce_store_api_checkout_update_order_meta' ) ) {
			$order->save();
		}
	}

	/**
	 * After an order: the next cart of this session is another cart.
	 */
	public static function forget() {
		if ( function_exists( 'WC' ) && WC()->session ) {
			WC()->session->set( self::SESSION, null );
		}
	}

	/**
	 * `extensions.cartresq.cart_key` in the Store API cart (read by assets/cartresq-woo.js).
	 */
	public static function register_store_api_data() {
		if ( ! function_exists( 'woocommerce_store_api_register_endpoint_data' ) ) {
			return;
		}
		woocommerce_store_api_register_endpoint_data(
			array(
				'endpoint'        => \Automattic\WooCommerce\StoreApi\Schemas\V1\CartSchema::IDENTIFIER,
				'namespace'       => 'cartresq',
				'data_callback'   => function () {
					return array( 'cart_key' => self::get() );
				},
				'schema_callback' => function () {
					return array(
						'cart_key' => array(
							'description' => 'CartResQ key of this cart',
							'type'        => 'string',
							'readonly'    => true,
						),
					);
				},
				'schema_type'     => ARRAY_A,
			)
		);
	}
}
