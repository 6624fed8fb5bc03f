<?php
/**
 * The checkout's marketing opt-in: always where the store's region needs prior consent (EU, EEA, UK,
 * Switzerland: `needs_opt_in()`), elsewhere when the merchant turns it on (WooCommerce › CartResQ). And an
 * SMS opt-in, unticked, when the merchant turns it on: stored as `_cartresq_sms_opt_in` = `yes`.
 *
 * WooCommerce orders carry no marketing-consent field, so without this CartResQ may not email shoppers
 * in regions that need prior consent (EU, UK, ...). The shopper's choice is stored as the order meta
 * `_cartresq_marketing_opt_in` = `yes`, which the REST API and webhooks include in `meta_data`.
 * - Classic checkout: a checkbox above the Place order button, saved with the order.
 * - Checkout block: an additional checkout field (WooCommerce 8.9+, location `order`); WooCommerce keeps
 *   it as `_wc_other/cartresq/marketing-opt-in`, and it is copied to our key as well.
 *
 * @package CartResQ
 */

defined( 'ABSPATH' ) || exit;

/**
 * Marketing opt-in on both checkouts.
 */
class CartResQ_Consent {

	const META     = '_cartresq_marketing_opt_in';
	const FIELD    = 'cartresq_marketing_opt_in';
	const BLOCK_ID = 'cartresq/marketing-opt-in';

	const SMS_META     = '_cartresq_sms_opt_in';
	const SMS_FIELD    = 'cartresq_sms_opt_in';
	const SMS_BLOCK_ID = 'cartresq/sms-opt-in';

	/**
	 * Where the law needs a shopper's prior opt-in to marketing email (ePrivacy/GDPR, UK PECR, Swiss UWG):
	 * the EU and EEA, the UK and Switzerland, by the store's base country (WooCommerce › Settings).
	 */
	const OPT_IN_COUNTRIES = array( 'AT', 'BE', 'BG', 'HR', 'CY', 'CZ', 'DK', 'EE', 'FI', 'FR', 'DE', 'GR', 'HU', 'IE', 'IT', 'LV', 'LT', 'LU', 'MT', 'NL', 'PL', 'PT', 'RO', 'SK', 'SI', 'ES', 'SE', 'IS', 'LI', 'NO', 'GB', 'CH' );

	/**
	 * Hooks: the marketing box where the law or the merchant wants it, the SMS box when the merchant does.
	 */
	public static function init() {
		if ( ! self::marketing_enabled() && ! self::sms_enabled() ) {
			return;
		}
		add_action( 'woocommerce_review_order_before_submit', array( __CLASS__, 'classic_field' ) );
		add_action( 'woocommerce_checkout_update_order_meta', array( __CLASS__, 'classic_save' ), 10, 1 );
		add_action( 'woocommerce_init', array( __CLASS__, 'register_block_field' ) );
		add_action( 'woocommerce_set_additional_field_value', array( __CLASS__, 'block_save' ), 10, 4 );
	}

	/**
	 * Whether the store's region needs prior opt-in (filter `cartresq_needs_opt_in` to decide otherwise).
	 *
	 * @return bool
	 */
	public static function needs_opt_in() {
		// The option, not WC()->countries: this runs on plugins_loaded, before WooCommerce's init makes that.
		$country = strtoupper( strtok( (string) get_option( 'woocommerce_default_country', '' ), ':' ) );
		return (bool) apply_filters( 'cartresq_needs_opt_in', in_array( $country, self::OPT_IN_COUNTRIES, true ), $country );
	}

	/**
	 * The marketing checkbox is shown.
	 *
	 * @return bool
	 */
	public static function marketing_enabled() {
		return 'yes' === CartResQ_Settings::get( 'marketing_opt_in' ) || self::needs_opt_in();
	}

	/**
	 * The SMS checkbox is shown (off by default).
	 *
	 * @return bool
	 */
	public static function sms_enabled() {
		return 'yes' === CartResQ_Settings::get( 'sms_opt_in' );
	}

	/**
	 * The consent the storefront script reports when no consent plugin (WP Consent API) answers: `opt-in`
	 * (only a ticked checkout box is consent) where the region or the merchant asks for it, else `implied`.
	 *
	 * @return string
	 */
	public static function storefront_mode() {
		return self::marketing_enabled() ? 'opt-in' : 'implied';
	}

	/**
	 * The SMS checkbox's text.
	 *
	 * @return string
	 */
	public static function sms_label() {
		return __( 'Text me reminders about my cart. Message and data rates may apply; reply STOP to unsubscribe.', 'cartresq' );
	}

	/**
	 * The text next to the checkbox.
	 *
	 * @return string
	 */
	public static function label() {
		return __( 'Email me reminders and offers about my cart and this store. I can unsubscribe at any time.', 'cartresq' );
	}

	/**
	 * Classic checkout: the checkbox, unticked (consent must be given, not assumed).
	 */
	public static function classic_field() {
		if ( self::sms_enabled() ) {
			woocommerce_form_field(
				self::SMS_FIELD,
				array(
					'type'     => 'checkbox',
					'class'    => array( 'form-row-wide', 'cartresq-sms-opt-in' ),
					'label'    => self::sms_label(),
					'required' => false,
				),
				0
			);
		}
		if ( ! self::marketing_enabled() ) {
			return;
		}
		woocommerce_form_field(
			self::FIELD,
			array(
				'type'     => 'checkbox',
				'class'    => array( 'form-row-wide', 'cartresq-marketing-opt-in' ),
				'label'    => self::label(),
				'required' => false,
			),
			0
		);
	}

	/**
	 * Classic checkout: store the ticked box on the order (WooCommerce verified its checkout nonce before this hook).
	 *
	 * @param int $order_id The new order.
	 */
	public static function classic_save( $order_id ) {
		$ticked = array();
		if ( self::marketing_enabled() && ! empty( $_POST[ self::FIELD ] ) ) { // phpcs:ignore WordPress.Security.NonceVerification.Missing -- checked by WC_Checkout::process_checkout().
			$ticked[] = self::META;
		}
		if ( self::sms_enabled() && ! empty( $_POST[ self::SMS_FIELD ] ) ) { // phpcs:ignore WordPress.Security.NonceVerification.Missing
			$ticked[] = self::SMS_META;
		}
		$order = $ticked ? wc_get_order( $order_id ) : null;
		if ( $order ) {
			foreach ( $ticked as $key ) {
				$order->update_meta_data( $key, 'yes' ); // Order CRUD: works with HPOS and posts storage.
			}
			$order->save();
		}
	}

	/**
	 * Checkout block: register the checkbox through the additional checkout fields API when it exists.
	 */
	public static function register_block_field() {
		if ( ! function_exists( 'woocommerce_register_additional_checkout_field' ) ) {
			return;
		}
		if ( self::sms_enabled() ) {
			woocommerce_register_additional_checkout_field(
				array(
					'id'       => self::SMS_BLOCK_ID,
					'label'    => self::sms_label(),
					'location' => 'order',
					'type'     => 'checkbox',
					'required' => false,
				)
			);
		}
		if ( ! self::marketing_enabled() ) {
			return;
		}
		woocommerce_register_additional_checkout_field(
			array(
				'id'       => self::BLOCK_ID,
				'label'    => self::label(),
				'location' => 'order',
				'type'     => 'checkbox',
				'required' => false,
			)
		);
	}

	/**
	 * Checkout block: mirror the field's value to our meta key; WooCommerce saves the order afterwards.
	 *
	 * @param string $key       Field id.
	 * @param mixed  $value     Field value.
	 * @param string $group     Field group.
	 * @param object $wc_object The order (or customer) being updated.
	 */
	public static function block_save( $key, $value, $group, $wc_object ) {
		$meta = array(
			self::BLOCK_ID     => self::META,
			self::SMS_BLOCK_ID => self::SMS_META,
		);
		if ( ! isset( $meta[ $key ] ) || ! ( $wc_object instanceof WC_Order ) ) {
			return;
		}
		if ( wc_string_to_bool( $value ) ) {
			$wc_object->update_meta_data( $meta[ $key ], 'yes' );
		} else {
			$wc_object->delete_meta_data( $meta[ $key ] );
		}
	}
}
