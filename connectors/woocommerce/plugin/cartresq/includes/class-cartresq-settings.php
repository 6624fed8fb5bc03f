<?php
/**
 * The plugin's one option: the app URL, and what the app hands over at activation.
 *
 * @package CartResQ
 */

defined( 'ABSPATH' ) || exit;

/**
 * Reads and writes the `cartresq_settings` option.
 */
class CartResQ_Settings {

	/**
	 * All settings, with defaults.
	 *
	 * @return array
	 */
	public static function all() {
		$stored = get_option( CARTRESQ_OPTION, array() );
		$stored = is_array( $stored ) ? $stored : array();
		return wp_parse_args(
			$stored,
			array(
				'app_url'          => defined( 'CARTRESQ_APP_URL' ) ? CARTRESQ_APP_URL : '',
				'store_key'        => '',
				'restore_secret'   => '',
				'connected_at'     => 0,
				'marketing_opt_in' => '', // 'yes': the checkout asks for email marketing consent (always where the region needs it).
				'sms_opt_in'       => '', // 'yes': the checkout offers an SMS opt-in box, unticked.
				'web_push'         => '', // 'yes': the app has web push: the exit popup offers browser reminders.
			)
		);
	}

	/**
	 * One setting.
	 *
	 * @param string $key Setting name.
	 * @return string
	 */
	public static function get( $key ) {
		$all = self::all();
		return isset( $all[ $key ] ) ? (string) $all[ $key ] : '';
	}

	/**
	 * Merge new values into the option (autoloaded: the frontend reads it on every page).
	 *
	 * @param array $values New values.
	 */
	public static function update( array $values ) {
		update_option( CARTRESQ_OPTION, array_merge( self::all(), $values ), true );
	}

	/**
	 * The app URL without a trailing slash, or '' when not set or not https.
	 *
	 * @return string
	 */
	public static function app_url() {
		$url = untrailingslashit( self::get( 'app_url' ) );
		return ( '' !== $url && 0 === strpos( $url, 'https://' ) ) ? $url : '';
	}

	/**
	 * How this store is named to the app: host, plus path for a store in a folder (stores.domain).
	 *
	 * @return string
	 */
	public static function shop_domain() {
		$home = wp_parse_url( home_url() );
		$host = isset( $home['host'] ) ? strtolower( $home['host'] ) : '';
		if ( isset( $home['port'] ) ) {
			$host .= ':' . $home['port'];
		}
		return $host . ( isset( $home['path'] ) ? untrailingslashit( $home['path'] ) : '' );
	}
}
